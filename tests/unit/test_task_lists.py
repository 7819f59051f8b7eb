"""Task lists in markdown, text, YAML and JSON: tasks, rejected lines and content keys."""

from __future__ import annotations

import pytest

from hub.tasks.lists import ListError, detect_format, parse_task_list


def test_yaml_items_keep_their_line_numbers_and_mapping_keys() -> None:
    text = (
        'tasks:\n  - "Write docs @ann #docs"  # quoted: a bare # starts a YAML comment\n'
        "  - {title: Ship, due: 2026-12-01, labels: [web]}\n  - 3\n  - {title: X, owner: bo}\n"
    )
    parsed = parse_task_list(text, detect_format(text, hint="list.yaml"))
    assert [(t.line, t.title, t.assignees, t.due, t.labels) for t in parsed.tasks] == [
        (2, "Write docs", ("ann",), None, ("docs",)),
        (3, "Ship", (), "2026-12-01", ("web",)),
    ]
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (4, "a task is a text or a mapping with `title`"),
        (5, "unknown key owner; use title, assignee, assignees, due, labels"),
    ]


def test_json_is_sniffed_and_bad_json_refuses_the_whole_list() -> None:
    text = '[\n  "a @x",\n  {"title": "b", "assignee": "y"}\n]'
    parsed = parse_task_list(text, detect_format(text))
    assert parsed.format == "json"
    assert [(t.line, t.title, t.assignees) for t in parsed.tasks] == [
        (2, "a", ("x",)),
        (3, "b", ("y",)),
    ]
    with pytest.raises(ListError, match="not valid JSON"):
        parse_task_list("[1,", "json")


def test_the_key_ignores_case_spacing_and_order_but_not_the_due_date() -> None:
    one = parse_task_list("Write  Notes @a #x #y due:2026-01-02", "text").tasks[0]
    same = parse_task_list("#y write notes #x due:2026-01-02 @A", "text").tasks[0]
    later = parse_task_list("Write Notes @a #x #y due:2026-01-03", "text").tasks[0]
    assert one.key == same.key
    assert one.key != later.key


def test_plain_text_is_one_task_a_line_and_a_second_due_is_refused() -> None:
    parsed = parse_task_list("one\n\ntwo due:2026-01-01 due:2026-01-02\n", "text")
    assert [t.title for t in parsed.tasks] == ["one"]
    assert [(r.line, r.reason) for r in parsed.rejected] == [(3, "two due: dates; give one")]
