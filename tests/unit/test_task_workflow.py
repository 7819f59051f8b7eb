"""Task automation helpers (#20): the stalled set, workload-based assignment and the
"previous occurrence still open" policy, as pure functions over query results."""

from __future__ import annotations

from typing import Any

import pytest

from hub.rules.workflow import if_previous_open, pick_assignee, stalled, tick_interval

STATUSES = {"In progress": "3d", "In review": "2d"}


def _task(
    tid: str, status: str, edited: str, assignee: list[str] | None = None, **fields: Any
) -> dict[str, Any]:
    return {
        "id": tid,
        "title": f"Task {tid}",
        "fields": {"Status": status, "Assignee": assignee or [], **fields},
        "last_edited_time": edited,
    }


def _tick(at: str, cron: str = "0 9 * * *", tz: str = "UTC") -> dict[str, Any]:
    return {
        "time": at,
        "data": {"fields": {"tick": at, "cron": cron, "timezone": tz, "date": at[:10]}},
    }


@pytest.mark.parametrize(
    ("edited", "status", "expected"),
    [
        # (last edit, status) -> None if not stalled, else (period, new, escalate) on
        # the daily tick of 2026-11-23 09:00 UTC
        ("2026-11-21T09:00:00Z", "In progress", None),  # 2 days < 3 days
        ("2026-11-20T09:00:00Z", "In progress", (1, True, False)),  # just crossed 3 days
        ("2026-11-20T08:59:00Z", "In progress", (1, True, False)),
        ("2026-11-20T09:00:01Z", "In progress", None),
        ("2026-11-19T08:00:00Z", "In progress", (1, False, False)),  # crossed yesterday
        ("2026-11-17T09:00:00Z", "In progress", (2, True, True)),  # second period: escalate
        ("2026-11-21T09:00:00Z", "In review", (1, True, False)),  # 2 days for reviews
        ("2026-11-01T09:00:00Z", "Not started", None),  # not a watched status
        ("2026-11-01T09:00:00Z", "Done", None),
    ],
)
def test_the_stalled_set_and_the_one_tick_that_reports_each_period(
    edited: str, status: str, expected: tuple[int, bool, bool] | None
) -> None:
    found = stalled([_task("p1", status, edited)], STATUSES, _tick("2026-11-23T09:00:00Z"))
    if expected is None:
        assert found == []
    else:
        (task,) = found
        assert (
            task["stall"]["period"],
            task["stall"]["new"],
            task["stall"]["escalate"],
        ) == expected
        assert task["stall"]["status"] == status


def test_each_period_is_new_on_exactly_one_of_a_run_of_daily_ticks() -> None:
    task = _task("p1", "In progress", "2026-11-10T13:30:00Z")
    news = []
    for day in range(10, 30):
        at = f"2026-11-{day:02d}T09:00:00Z"
        for found in stalled([task], STATUSES, _tick(at)):
            if found["stall"]["new"]:
                news.append((at[:10], found["stall"]["period"]))
    assert news == [
        ("2026-11-14", 1),
        ("2026-11-17", 2),
        ("2026-11-20", 3),
        ("2026-11-23", 4),
        ("2026-11-26", 5),
        ("2026-11-29", 6),
    ]


def test_a_task_that_moves_again_leaves_the_stalled_set() -> None:
    before = _task("p1", "In progress", "2026-11-10T09:00:00Z")
    moved = _task("p1", "In review", "2026-11-22T17:00:00Z")
    tick = _tick("2026-11-23T09:00:00Z")
    assert [t["id"] for t in stalled([before], STATUSES, tick)] == ["p1"]
    assert stalled([moved], STATUSES, tick) == []


def test_the_report_window_is_the_schedules_own_interval() -> None:
    weekdays = _tick("2026-11-23T09:00:00Z", cron="0 9 * * MON-FRI")  # a Monday
    assert tick_interval(weekdays) == 3 * 86_400  # since Friday's tick
    hourly = _tick("2026-11-23T09:00:00Z", cron="0 * * * *")
    assert tick_interval(hourly) == 3_600
    rrule = _tick("2026-11-23T09:00:00Z", cron="FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0")
    assert tick_interval(rrule) == 7 * 86_400
    # Over a weekend the Monday tick reports a boundary crossed on Saturday.
    task = _task("p1", "In progress", "2026-11-18T12:00:00Z")
    (found,) = stalled([task], STATUSES, weekdays)
    assert found["stall"]["new"] is True
    (again,) = stalled([task], STATUSES, _tick("2026-11-23T09:00:00Z"), every="1d")
    assert again["stall"]["new"] is False


PEOPLE = {
    "ada": {
        "key": "ada",
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "notion": "u-ada",
        "roles": ["project-manager", "team-member"],
    },
    "grace": {
        "key": "grace",
        "name": "Grace Hopper",
        "email": "grace@example.com",
        "notion": "u-grace",
        "roles": ["team-member"],
    },
    "linus": {
        "key": "linus",
        "name": "Linus",
        "email": None,
        "notion": "u-linus",
        "roles": ["team-member"],
    },
    "client": {
        "key": "client",
        "name": "Cleo Client",
        "email": None,
        "notion": "u-cleo",
        "roles": ["client"],
    },
}


def _open(*rows: tuple[str, float | None]) -> list[dict[str, Any]]:
    return [
        _task(
            f"t{n}",
            "In progress",
            "2026-11-20T09:00:00Z",
            [who],
            **({"Estimate": est} if est is not None else {}),
        )
        for n, (who, est) in enumerate(rows)
    ]


@pytest.mark.parametrize(
    ("tasks", "kwargs", "chosen"),
    [
        # least open tasks by count
        (
            _open(("Ada Lovelace", None), ("Ada Lovelace", None), ("Grace Hopper", None)),
            {"role": "team-member"},
            "linus",
        ),
        # a tie breaks on the config key, alphabetically
        (_open(("Linus", None)), {"role": "team-member"}, "ada"),
        (_open(("Ada Lovelace", None), ("Linus", None)), {"role": "team-member"}, "grace"),
        # emails match too (Notion's "<name> emails" or an email in the list)
        (_open(("grace@example.com", None), ("Linus", None)), {"role": "team-member"}, "ada"),
        # by estimate: one big task weighs more than two small ones
        (
            _open(("Ada Lovelace", 8), ("Grace Hopper", 1), ("Grace Hopper", 2), ("Linus", 5)),
            {"role": "team-member", "by": "estimate"},
            "grace",
        ),
        # a task with no estimate weighs 1
        (
            _open(("Ada Lovelace", None), ("Grace Hopper", 2), ("Linus", 3)),
            {"role": "team-member", "by": "estimate"},
            "ada",
        ),
        # unavailable people are skipped, whatever their load
        ([], {"role": "team-member", "unavailable": ["Ada Lovelace", "grace"]}, "linus"),
        # no role: everyone in the directory
        (_open(("Ada Lovelace", None), ("Grace Hopper", None), ("Linus", None)), {}, "client"),
    ],
)
def test_pick_assignee(tasks: list[dict[str, Any]], kwargs: dict[str, Any], chosen: str) -> None:
    picked = pick_assignee(tasks, PEOPLE, **kwargs)
    assert picked is not None
    assert picked["key"] == chosen


def test_the_reason_says_why_and_who_was_away() -> None:
    people = {**PEOPLE, "grace": {**PEOPLE["grace"], "available": False}}
    picked = pick_assignee(
        _open(("Ada Lovelace", None), ("Ada Lovelace", None), ("Linus", None)),
        people,
        role="team-member",
    )
    assert picked is not None
    assert picked["reason"] == (
        "Assigned to Linus: least open work (1 open task; Ada Lovelace 2 open tasks). "
        "Unavailable: Grace Hopper."
    )
    assert picked["notion"] == "u-linus"


def test_nobody_to_pick() -> None:
    no_notion = {"x": {"key": "x", "name": "X", "roles": ["team-member"], "notion": None}}
    assert pick_assignee([], no_notion, role="team-member") is None
    assert (
        pick_assignee([], PEOPLE, role="team-member", unavailable=["ada", "grace", "linus"]) is None
    )
    with pytest.raises(ValueError, match="by must be 'count' or 'estimate'"):
        pick_assignee([], PEOPLE, by="hours")


def test_if_previous_open() -> None:
    previous = [{"id": "p0", "title": "Weekly report 2026-11-16"}]
    assert if_previous_open(previous, "skip", "Weekly report 2026-11-23") == []
    assert if_previous_open(previous, "create", "Weekly report 2026-11-23") == [
        {"previous": previous}
    ]
    assert if_previous_open([], "skip") == [{"previous": []}]
    # the page of this very occurrence (a re-run) is not a previous one
    mine = [{"id": "p1", "title": "Weekly report 2026-11-23"}]
    assert if_previous_open(mine, "skip", "Weekly report 2026-11-23") == [{"previous": []}]
