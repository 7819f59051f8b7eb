"""Flattening Notion property values, diffing snapshots, coalescing bursts, enriching events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub.clock import FakeClock
from hub.events import Actor, Entity, Event
from hub.notion.diff import diff_properties
from hub.notion.enrich import enrich_page_event, snapshot_of
from hub.notion.properties import (
    flatten_properties,
    flatten_value,
    known_people,
    page_title,
    property_names,
)
from tests.support import fixture_path

PAGES = (
    "launch-post.before",
    "launch-post.after",
    "pricing-page",
    "pricing-page.in-trash",
    "release-notes",
)
LAUNCH_POST = "153104cd-477e-809d-8dc4-ff2d96ae3090"
TASKS_DB = "8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80"
ADA = "c7c11cca-1d73-471d-9b6e-bdef51470190"


def _json(*parts: str) -> Any:
    return json.loads(fixture_path("notion", *parts).read_text(encoding="utf-8"))


def _page(name: str) -> dict[str, Any]:
    page: dict[str, Any] = _json("api", "pages", f"{name}.json")
    return page


# --- flatten_properties ------------------------------------------------------------------


@pytest.mark.parametrize("name", PAGES)
def test_every_page_fixture_flattens_every_property_to_plain_json(name: str) -> None:
    page = _page(name)

    flat = flatten_properties(page)

    assert set(page["properties"]) <= set(flat)
    json.dumps(flat, allow_nan=False)  # plain JSON, as rules and the store see it
    assert isinstance(flat["Name"], str)
    assert flat["Name"]
    assert isinstance(flat["Task ID"], str)
    assert flat["Task ID"].startswith("TASK-")
    assert isinstance(flat["Tags"], list)
    assert isinstance(flat["Assignee"], list)
    assert isinstance(flat["Blocked"], bool)


def test_launch_post_after_the_edit_flattens_to_the_values_rules_read() -> None:
    flat = flatten_properties(_page("launch-post.after"))

    assert flat == {
        "Name": "Write launch post",
        "Status": "Done",
        "Priority": "P1",
        "Tags": ["marketing", "web"],
        "Assignee": ["Ada Lovelace", "Grace Hopper"],
        "Assignee emails": ["ada@example.com", "grace@example.com"],
        "Due": "2026-11-30T15:00:00.000+01:00",
        "Due end": "2026-11-30T16:00:00.000+01:00",
        "Estimate": 3,
        "Blocked": False,
        "Spec": "https://docs.example.com/specs/launch-post",
        "Contact": "pm@example.com",
        "Phone": "+1 555 0100",
        "Project": ["6e7f8091-a2b3-4c4d-9e5f-60718293a4b5"],
        "Days left": 5,
        "Subtasks done": 2,
        "Created": "2026-11-18T09:12:00.000Z",
        "Edited": "2026-11-21T10:00:07.000Z",
        "Created by": "Ada Lovelace",
        "Created by email": "ada@example.com",
        "Task ID": "TASK-41",
        "Attachments": ["brief.pdf"],
        "Notes": "Ready for review",
    }


def test_a_plain_date_is_its_start_and_has_no_end_key() -> None:
    flat = flatten_properties(_page("launch-post.before"))

    assert flat["Due"] == "2026-11-28"
    assert "Due end" not in flat
    assert flat["Notes"] == ""


def test_empty_select_number_date_and_people_flatten_to_none_and_empty_lists() -> None:
    flat = flatten_properties(_page("release-notes"))

    assert flat["Priority"] is None
    assert flat["Estimate"] is None
    assert flat["Due"] is None
    assert flat["Assignee"] == []
    assert flat["Assignee emails"] == []


@pytest.mark.parametrize(
    ("prop", "expected"),
    [
        pytest.param({"type": "button", "button": {}}, None, id="unknown-type"),
        pytest.param({"type": "verification", "verification": {"state": "x"}}, None, id="new"),
        pytest.param({"type": "select"}, None, id="value-missing"),
        pytest.param({"type": "multi_select", "multi_select": "oops"}, [], id="wrong-shape"),
        pytest.param({"type": "number", "number": {"nested": 1}}, None, id="number-not-scalar"),
        pytest.param({"id": "x"}, None, id="no-type"),
        pytest.param(
            {"type": "formula", "formula": {"type": "date", "date": {"start": "2026-12-01"}}},
            "2026-12-01",
            id="formula-date",
        ),
        pytest.param(
            {"type": "formula", "formula": {"type": "string", "string": "late"}},
            "late",
            id="formula-string",
        ),
        pytest.param(
            {"type": "formula", "formula": {"type": "boolean", "boolean": True}},
            True,
            id="formula-boolean",
        ),
        pytest.param(
            {
                "type": "rollup",
                "rollup": {
                    "type": "array",
                    "array": [
                        {"type": "title", "title": [{"plain_text": "Launch"}]},
                        {"type": "people", "people": [{"id": "u1", "name": "Ada"}]},
                    ],
                    "function": "show_original",
                },
            },
            ["Launch", ["Ada"]],
            id="rollup-array",
        ),
        pytest.param(
            {"type": "rollup", "rollup": {"type": "incomplete", "incomplete": {}}},
            None,
            id="rollup-incomplete",
        ),
        pytest.param(
            {"type": "unique_id", "unique_id": {"prefix": None, "number": 12}}, "12", id="no-prefix"
        ),
        pytest.param(
            {"type": "people", "people": [{"object": "user", "id": "u-only-id"}]},
            ["u-only-id"],
            id="people-without-names",
        ),
        pytest.param(
            {
                "type": "files",
                "files": [
                    {
                        "name": "a.png",
                        "type": "file",
                        "file": {"url": "https://s3.example.com/a.png?X-Amz-Signature=abc"},
                    },
                    {"name": "", "type": "external", "external": {"url": "https://x.example/b"}},
                ],
            },
            ["a.png", "https://x.example/b"],
            id="files-signed-url-not-kept",
        ),
    ],
)
def test_property_values_flatten_without_ever_raising(prop: dict[str, Any], expected: Any) -> None:
    assert flatten_value(prop) == expected


def test_a_page_without_properties_flattens_to_nothing() -> None:
    assert flatten_properties({"object": "page", "id": "x"}) == {}
    assert flatten_properties({"properties": {"Odd": "not an object"}}) == {"Odd": None}


def test_a_sibling_key_never_hides_a_real_property_of_that_name() -> None:
    page = {
        "properties": {
            "Owner": {
                "type": "people",
                "people": [{"id": "u", "name": "Ada", "person": {"email": "ada@example.com"}}],
            },
            "Owner emails": {"type": "rich_text", "rich_text": [{"plain_text": "typed by hand"}]},
        }
    }

    flat = flatten_properties(page)

    assert flat["Owner emails"] == "typed by hand"


def test_title_people_and_schema_names_are_read_from_fixtures() -> None:
    page = _page("launch-post.after")
    schema = _json("api", "data_sources", "tasks.json")

    assert page_title(page) == "Write launch post"
    assert known_people(page)[ADA] == ("Ada Lovelace", "ada@example.com")
    names = property_names(schema)
    assert names["%3AUPp"] == "Status"
    assert names["DbAu"] == "Assignee"
    assert names["n%3D%3Fs"] == "Due"
    assert property_names(_json("api", "databases", "tasks.json")) == names


# --- diff_properties ---------------------------------------------------------------------


def test_diff_of_the_launch_post_edit_names_exactly_what_changed() -> None:
    before = flatten_properties(_page("launch-post.before"))
    after = flatten_properties(_page("launch-post.after"))

    changes = diff_properties(before, after)

    assert changes == {
        "Status": {"from": "In progress", "to": "Done"},
        "Tags": {"from": ["marketing"], "to": ["marketing", "web"]},
        "Assignee": {"from": ["Grace Hopper"], "to": ["Ada Lovelace", "Grace Hopper"]},
        "Assignee emails": {
            "from": ["grace@example.com"],
            "to": ["ada@example.com", "grace@example.com"],
        },
        "Due": {"from": "2026-11-28", "to": "2026-11-30T15:00:00.000+01:00"},
        "Due end": {"from": None, "to": "2026-11-30T16:00:00.000+01:00"},
        "Edited": {"from": "2026-11-20T16:40:00.000Z", "to": "2026-11-21T10:00:07.000Z"},
        "Notes": {"from": "", "to": "Ready for review"},
    }


def test_first_sight_reports_every_property_as_changed_from_none() -> None:
    after = flatten_properties(_page("launch-post.after"))

    changes = diff_properties(None, after)

    assert set(changes) == set(after)
    assert all(c["from"] is None for c in changes.values())
    assert changes["Status"] == {"from": None, "to": "Done"}


def test_unchanged_snapshot_has_no_changes_and_removed_property_goes_to_none() -> None:
    flat = flatten_properties(_page("pricing-page"))

    assert diff_properties(flat, dict(flat)) == {}
    shrunk = {k: v for k, v in flat.items() if k != "Estimate"}
    assert diff_properties(flat, shrunk) == {"Estimate": {"from": 5, "to": None}}


# --- enrich_page_event -------------------------------------------------------------------


def _thin_event() -> Event:
    return Event(
        id="e-1",
        source="notion/workspace/7b1e4f52-3c2a-4d8e-9f10-2a6c5e8d9b01",
        type="notion.page.properties_updated",
        subject=f"page/{LAUNCH_POST}",
        time=FakeClock().now(),
        entity=Entity(kind="page", id=LAUNCH_POST, url="https://www.notion.so/x"),
        actor=Actor(id=ADA),
        fields={"notion": {"updated_properties": ["%3AUPp", "DbAu", "zzz"]}},
    )


def test_enriching_names_the_page_kind_actor_and_changes_since_the_snapshot() -> None:
    previous = snapshot_of(_page("launch-post.before")).fields
    names = property_names(_json("api", "databases", "tasks.json"))

    event, snapshot = enrich_page_event(
        _thin_event(),
        _page("launch-post.after"),
        previous=previous,
        kinds={TASKS_DB: "task"},
        names=names,
    )

    assert event.entity == Entity(
        kind="task",
        id=LAUNCH_POST,
        url="https://www.notion.so/Write-launch-post-153104cd477e809d8dc4ff2d96ae3090",
        title="Write launch post",
    )
    assert event.actor == Actor(id=ADA, name="Ada Lovelace", email="ada@example.com")
    assert event.changes["Status"] == {"from": "In progress", "to": "Done"}
    assert event.fields["Status"] == "Done"
    assert event.fields["notion"]["updated_property_names"] == ["Status", "Assignee"]
    assert event.fields["notion"]["in_trash"] is False
    assert snapshot.page_id == LAUNCH_POST
    assert snapshot.last_edited_time == "2026-11-21T10:00:07.000Z"
    assert snapshot.fields == flatten_properties(_page("launch-post.after"))


def test_enriching_a_trashed_page_says_so_and_keeps_the_default_kind() -> None:
    event, _ = enrich_page_event(
        _thin_event(), _page("pricing-page.in-trash"), previous=None, kinds={}
    )

    assert event.entity.kind == "page"
    assert event.fields["notion"]["in_trash"] is True
    assert event.changes["Name"] == {"from": None, "to": "Update pricing page"}
