"""Duplicate-task scoring and categorization (#20): the pure functions rules rely on."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from hub.config.categories import load_examples
from hub.events import Entity, Event, event_from_dict
from hub.rules.categories import build_categories, categorize, with_category
from hub.rules.duplicates import TaskText, find_duplicates, similarity

REPO = Path(__file__).resolve().parents[2]


def _task(title: str, description: str = "", task_id: str = "t") -> TaskText:
    return TaskText(id=task_id, title=title, description=description)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Migrate user table to Postgres", "Migrate user tabel to Postgress"),
        ("Rotate database credentials", "Rotate DB creds"),
        ("Checkout page slow on mobile", "Mobile checkout page slow"),
    ],
)
def test_typos_abbreviations_and_reordering_are_duplicates(a: str, b: str) -> None:
    assert similarity(_task(a), _task(b)) >= 0.6


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Upgrade Node.js to 18", "Upgrade Node.js to 20"),
        ("Deploy payment service to staging", "Deploy payment service to production"),
        ("Add caching to product API", "Remove caching from product API"),
        (
            "Login screen layout broken on small phones",
            "Signup screen layout broken on small phones",
        ),
    ],
)
def test_other_versions_places_verbs_or_a_swapped_word_are_not(a: str, b: str) -> None:
    assert similarity(_task(a), _task(b)) < 0.6


def test_find_duplicates_skips_the_task_itself_and_ranks_best_first() -> None:
    new = _task("Write launch blog post", task_id="new")
    open_tasks = [
        _task("Write launch blog post", task_id="new"),
        _task("Draft the launch blog post", task_id="close"),
        _task("Write blog post about launch", task_id="closer"),
        _task("Renew TLS certificate", task_id="other"),
    ]
    found = find_duplicates(new, open_tasks, threshold=0.6, limit=5)
    assert [d["id"] for d in found][:2] in (["closer", "close"], ["close", "closer"])
    assert "new" not in [d["id"] for d in found]
    assert "other" not in [d["id"] for d in found]
    assert found == sorted(found, key=lambda d: -d["score"])
    assert set(found[0]) == {"id", "title", "url", "score"}


def test_an_event_with_duplicates_and_a_category_validates_and_round_trips() -> None:
    event = Event(
        id="e1",
        source="notion/workspace/acme",
        type="notion.page.created",
        subject="page/p1",
        time=datetime(2026, 11, 21, tzinfo=UTC),
        entity=Entity(kind="task", id="p1", title="Draft launch post"),
        duplicates=({"id": "p0", "title": "Write launch post", "url": None, "score": 0.8},),
    )
    doc = with_category(event.to_dict(), build_categories([{"name": "docs", "keywords": ["post"]}]))
    schema = json.loads((REPO / "schemas" / "event.schema.json").read_text())
    jsonschema.validate(doc, schema)
    assert doc["data"]["category"] == "docs"
    assert event_from_dict(doc).duplicates == event.duplicates


CONFIG: list[dict[str, Any]] = [
    {"name": "security", "regex": [r"\bcve-\d{4}-\d+"], "labels": ["security"]},
    {
        "name": "infra",
        "repos": ["acme/infra-*"],
        "databases": ["8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80"],
    },
    {"name": "bug", "keywords": ["crash", "regression"], "labels": ["bug"]},
    {"name": "feature", "examples": ["Recurring tasks", "Saved filters on the task list"]},
]


def _doc(title: str, **fields: Any) -> dict[str, Any]:
    return {
        "source": fields.pop("source", "notion/workspace/acme"),
        "type": "notion.page.created",
        "data": {"entity": {"kind": "task", "id": "p", "title": title}, "fields": fields},
    }


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (_doc("Anything", notion={"parent_id": "8e2f6a149c3b4d5ea1f23b4c5d6e7f80"}), "infra"),
        (_doc("Release", source="github/acme/infra-live", repository="acme/infra-live"), "infra"),
        (_doc("Something odd", labels=["Security"]), "security"),
        (_doc("Patch OpenSSL for CVE-2024-0727"), "security"),
        (_doc("App crashes when opening settings"), "bug"),
        (_doc("Recurring invoices"), "feature"),
        (_doc(""), None),
    ],
)
def test_categorize_uses_origin_labels_patterns_keywords_then_examples(
    document: dict[str, Any], expected: str | None
) -> None:
    assert categorize(document, build_categories(CONFIG)) == expected


def test_another_database_is_not_that_databases_category() -> None:
    other = _doc("Anything", notion={"parent_id": "0e2f6a149c3b4d5ea1f23b4c5d6e7f80"})
    assert categorize(other, build_categories(CONFIG)) != "infra"


def test_a_category_already_on_the_event_is_kept_and_no_config_adds_nothing() -> None:
    categories = build_categories(CONFIG)
    given = _doc("App crashes")
    given["data"]["category"] = "feature"
    assert with_category(given, categories)["data"]["category"] == "feature"
    assert "category" not in with_category(_doc("App crashes"), build_categories([]))["data"]


def test_a_bad_regex_names_its_category() -> None:
    with pytest.raises(ValueError, match="category 'x': regex"):
        build_categories([{"name": "x", "regex": ["("]}])


TASKS = Path(__file__).resolve().parents[1] / "fixtures/tasks"


def test_examples_from_a_file_of_closed_tasks_decide_what_keywords_do_not(tmp_path: Path) -> None:
    # given no keyword for the word "invoice", and one closed task that says it is a feature
    closed = tmp_path / "closed.jsonl"
    closed.write_text(
        '{"category": "feature", "title": "Invoice templates", "description": "Per client."}\n'
    )
    config = [{"name": "bug", "keywords": ["crash"]}, {"name": "feature", "keywords": ["add"]}]
    without = build_categories(config)
    trained = build_categories(config, examples=load_examples(closed))
    assert categorize(_doc("Invoice template per client"), without) is None
    assert categorize(_doc("Invoice template per client"), trained) == "feature"


def test_a_keyword_hit_is_evidence_the_examples_can_outweigh() -> None:
    # given "export" as a feature keyword, and closed bugs that are about exports
    config = [
        {"name": "bug", "keywords": ["crash"]},
        {"name": "feature", "keywords": ["export", "add"]},
    ]
    examples = [
        ("bug", "Export leaves out the header row"),
        ("bug", "Export hangs on big projects"),
        ("bug", "Totals row missing from the export"),
        ("feature", "Add an export to Excel"),
    ]
    categories = build_categories(config, examples=examples)
    # then a new defect about exports is a bug, not a feature because the keyword fired
    assert categorize(_doc("Export leaves out the totals"), categories) == "bug"
    assert categorize(_doc("Add an export to PDF"), categories) == "feature"


def test_an_example_of_an_unknown_category_and_a_bad_line_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="category 'chore' is not configured"):
        build_categories([{"name": "bug"}], examples=[("chore", "Tidy up")])
    bad = tmp_path / "closed.jsonl"
    bad.write_text('{"title": "no category"}\n')
    with pytest.raises(ValueError, match=r"closed.jsonl:1: expected a JSON object"):
        load_examples(bad)


def test_the_fixture_config_trained_on_the_tuning_half_meets_the_goal_on_the_holdout(
    tmp_path: Path,
) -> None:
    # benchmarks/categories.py in short: the goal of #20 is >= 90% of held-out tasks right.
    # c001-c209 are the first pass; c210-c411 were written later to be hard (defects and
    # security findings worded like features), so they get a floor of their own, not the goal.
    lines = (TASKS / "categories.jsonl").read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines]
    closed = tmp_path / "closed.jsonl"
    closed.write_text("\n".join(json.dumps(i) for i in items if i["split"] == "tune"))
    config = yaml.safe_load((TASKS / "categories.yaml").read_text(encoding="utf-8"))
    categories = build_categories(config["categories"], examples=load_examples(closed))

    def accuracy(holdout: list[dict[str, Any]]) -> float:
        right = sum(
            categorize(_doc(i["title"], Description=i["description"]), categories) == i["category"]
            for i in holdout
        )
        return right / len(holdout)

    holdout = [i for i in items if i["split"] == "holdout"]
    assert accuracy([i for i in holdout if int(i["id"][1:]) <= 209]) >= 0.90
    assert accuracy([i for i in holdout if int(i["id"][1:]) > 209]) >= 0.60


def test_the_closed_tasks_fixture_trains_every_configured_category() -> None:
    # benchmarks/categories.py trains on it for the blind sets (docs/rules.md): a category
    # missing from it, or a line load_examples refuses, would change the figure silently.
    examples = load_examples(TASKS / "categories_closed.jsonl")
    config = yaml.safe_load((TASKS / "categories.yaml").read_text(encoding="utf-8"))
    names = {c["name"] for c in config["categories"]}
    per_category = {name: sum(label == name for label, _ in examples) for name in names}
    assert per_category == dict.fromkeys(names, 120)
    categories = build_categories(config["categories"], examples=examples)
    assert categorize(_doc("Blog post: what's new in 3.0"), categories) == "marketing"
