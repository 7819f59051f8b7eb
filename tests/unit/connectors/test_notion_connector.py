"""NotionConnector against a respx fake of the Notion API, with the real response shapes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jsonschema
import pytest

from connectors._notion_api import notion_id
from connectors._notion_props import property_value
from connectors.base import DeliveryContext, Destination, RenderedAction, SendResult
from connectors.notion import NotionConnector
from hub.secrets import Secret
from tests.connector_support import (
    RespxService,
    delivery_context,
    rendered_action,
    send_in_order,
    sent_json,
)
from tests.support import REPO, fixture_json

API = "https://notion.test"
TOKEN = "ntn_not_a_real_token_4f1c"
NOW = datetime(2026, 11, 21, 14, 0, tzinfo=UTC)
PAGE = "153104cd-477e-809d-8dc4-ff2d96ae3090"  # launch post
OTHER_PAGE = "154104cd-477e-8030-9989-d4daf352d900"  # release notes
TRASHED = "153104cd-477e-8001-935c-c4b11828dfbd"  # pricing page
DATABASE = "8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80"
DATA_SOURCE = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"
ADA = "c7c11cca-1d73-471d-9b6e-bdef51470190"
GRACE = "d8d22ddb-2e84-482e-8c7f-cef062581201"
KEY = "k" * 64


def _fixture(name: str) -> Any:
    return fixture_json("notion", "api", name)


def _error(name: str) -> httpx.Response:
    """A Notion error fixture as a response; `_headers` holds the headers it came with."""
    body = _fixture(f"errors/{name}.json")
    headers = body.pop("_headers", {})
    return httpx.Response(body["status"], json=body, headers=headers)


def _database_2025() -> dict[str, Any]:
    """The database as 2025-09-03 returns it: its data sources instead of properties."""
    database: dict[str, Any] = _fixture("databases/tasks.json")
    del database["properties"]
    database["data_sources"] = [{"id": DATA_SOURCE, "name": "Tasks"}]
    return database


def _destination(**options: Any) -> Destination:
    return Destination(
        name="notion",
        connector="notion",
        options={"token": Secret(TOKEN, origin="env:NOTION_TOKEN"), "api_url": API, **options},
    )


def _context(
    *, attempt: int = 1, previous_ref: str | None = None, destination: Destination | None = None
) -> DeliveryContext:
    return delivery_context(
        destination or _destination(),
        now=NOW,
        rule_id="issue-closed",
        idempotency_key=KEY,
        attempt=attempt,
        previous_ref=previous_ref,
    )


def _action(operation: str | None, **params: Any) -> RenderedAction:
    return rendered_action(
        "notion", "notion", params, operation=operation, destination_param="workspace"
    )


class FakeNotion(RespxService):
    """A respx router standing in for api.notion.com."""

    def __init__(self) -> None:
        super().__init__(NotionConnector, API, _context)
        r = self.router
        self.get_page = r.get(f"/v1/pages/{PAGE}").mock(
            return_value=httpx.Response(200, json=_fixture("pages/launch-post.before.json"))
        )
        self.get_other = r.get(f"/v1/pages/{OTHER_PAGE}").mock(
            return_value=httpx.Response(200, json=_fixture("pages/release-notes.json"))
        )
        self.get_trashed = r.get(f"/v1/pages/{TRASHED}").mock(
            return_value=httpx.Response(200, json=_fixture("pages/pricing-page.in-trash.json"))
        )
        self.patch = r.patch(f"/v1/pages/{PAGE}").mock(
            return_value=httpx.Response(200, json=_fixture("pages/launch-post.after.json"))
        )
        self.patch_other = r.patch(f"/v1/pages/{OTHER_PAGE}").mock(
            return_value=httpx.Response(200, json=_fixture("pages/release-notes.json"))
        )
        self.comment = r.post("/v1/comments").mock(
            return_value=httpx.Response(200, json=_fixture("comments/created.json"))
        )
        self.database = r.get(f"/v1/databases/{DATABASE}").mock(
            return_value=httpx.Response(200, json=_database_2025())
        )
        self.data_source = r.get(f"/v1/data_sources/{DATA_SOURCE}").mock(
            return_value=httpx.Response(200, json=_fixture("data_sources/tasks.json"))
        )
        self.create = r.post("/v1/pages").mock(
            return_value=httpx.Response(200, json=_fixture("pages/release-notes.json"))
        )
        empty = {**_fixture("databases/tasks.query.json"), "results": [], "has_more": False}
        self.query = r.post(f"/v1/data_sources/{DATA_SOURCE}/query").mock(
            return_value=httpx.Response(200, json={**empty, "next_cursor": None})
        )


def _text(content: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": {"content": content}}]


# --- notion.update -------------------------------------------------------------------------

PLAIN = {
    "Status": "Done",
    "Assignee": [ADA, GRACE],
    "Due": "2026-12-01",
    "Estimate": 3,
    "Blocked": True,
    "Tags": ["marketing", "web"],
    "Notes": "Closed on GitHub",
}
CONVERTED = {
    "Status": {"status": {"name": "Done"}},
    "Assignee": {"people": [{"object": "user", "id": ADA}, {"object": "user", "id": GRACE}]},
    "Due": {"date": {"start": "2026-12-01"}},
    "Estimate": {"number": 3},
    "Blocked": {"checkbox": True},
    "Tags": {"multi_select": [{"name": "marketing"}, {"name": "web"}]},
    "Notes": {"rich_text": _text("Closed on GitHub")},
}


def test_update_converts_plain_values_by_the_types_the_page_carries() -> None:
    notion = FakeNotion()

    result = notion.send_one(_action("update", page=PAGE, properties=PLAIN))

    assert result.outcome == "ok"
    assert result.ref == PAGE
    assert notion.get_page.call_count == 1
    assert sent_json(notion.patch) == {"properties": CONVERTED}


def test_rendered_template_text_is_read_as_the_property_type() -> None:
    # Templates render to strings: "3", "False", "['a', 'b']", "a, b".
    notion = FakeNotion()
    rendered = {
        "Estimate": "3.5",
        "Blocked": "False",
        "Tags": "['marketing', 'web']",
        "Assignee": f"{ADA}, {GRACE}",
    }

    notion.send_one(_action("update", page=PAGE, properties=rendered))

    sent = sent_json(notion.patch)["properties"]
    assert sent["Estimate"] == {"number": 3.5}
    assert sent["Blocked"] == {"checkbox": False}
    assert sent["Tags"] == CONVERTED["Tags"]
    assert sent["Assignee"] == CONVERTED["Assignee"]


def test_empty_values_clear_the_property() -> None:
    notion = FakeNotion()

    notion.send_one(_action("update", page=PAGE, properties={"Due": "", "Tags": [], "Notes": None}))

    assert sent_json(notion.patch)["properties"] == {
        "Due": {"date": None},
        "Tags": {"multi_select": []},
        "Notes": {"rich_text": []},
    }


def test_requests_carry_the_bearer_token_and_notion_version() -> None:
    notion = FakeNotion()

    notion.send_one(_action("update", page=PAGE, properties={"Status": "Done"}))

    assert [r.headers["authorization"] for r in notion.requests] == [f"Bearer {TOKEN}"] * 2
    assert {r.headers["notion-version"] for r in notion.requests} == {"2025-09-03"}


def test_a_page_url_is_read_as_its_id() -> None:
    notion = FakeNotion()
    url = "https://www.notion.so/acme/Write-launch-post-153104cd477e809d8dc4ff2d96ae3090?pvs=4"

    result = notion.send_one(_action("update", page=url, properties={"Status": "Done"}))

    assert result.outcome == "ok"
    assert notion.patch.call_count == 1


def test_the_page_is_read_once_for_repeated_updates() -> None:
    notion = FakeNotion()
    done = _action("update", page=PAGE, properties={"Status": "Done"})

    results = notion.send((done, _context()), (done, _context()))

    assert [r.outcome for r in results] == ["ok", "ok"]
    assert notion.get_page.call_count == 1
    assert notion.patch.call_count == 2


def test_naming_the_database_reads_its_schema_once_for_all_its_pages() -> None:
    notion = FakeNotion()

    results = notion.send(
        (_action("update", page=PAGE, database=DATABASE, properties=PLAIN), _context()),
        (_action("update", page=OTHER_PAGE, database=DATABASE, properties=PLAIN), _context()),
    )

    assert [r.outcome for r in results] == ["ok", "ok"]
    assert (notion.database.call_count, notion.data_source.call_count) == (1, 1)
    assert notion.get_page.call_count == notion.get_other.call_count == 0
    assert sent_json(notion.patch_other) == {"properties": CONVERTED}


def test_explicit_types_need_no_read() -> None:
    notion = FakeNotion()
    action = _action("update", page=PAGE, properties={"Status": "Done"}, types={"Status": "status"})

    result = notion.send_one(action)

    assert result.outcome == "ok"
    assert [r.method for r in notion.requests] == ["PATCH"]
    assert sent_json(notion.patch) == {"properties": {"Status": {"status": {"name": "Done"}}}}


@pytest.mark.parametrize(
    ("properties", "reason_has"),
    [
        pytest.param({"Stage": "Done"}, "no property 'Stage'", id="unknown-name"),
        pytest.param({"Days left": 3}, "formula property", id="computed"),
        pytest.param({"Assignee": ["Ada Lovelace"]}, "user ids", id="people-by-name"),
        pytest.param({"Estimate": "three"}, "not a number", id="not-a-number"),
        pytest.param({"Blocked": "maybe"}, "not true or false", id="not-a-boolean"),
        pytest.param({"Due": "next week"}, "ISO 8601", id="not-a-date"),
    ],
)
def test_values_that_cannot_be_converted_fail_without_a_write(
    properties: dict[str, Any], reason_has: str
) -> None:
    notion = FakeNotion()

    result = notion.send_one(_action("update", page=PAGE, properties=properties))

    assert result.outcome == "fail"
    assert reason_has in result.reason
    assert notion.patch.call_count == 0


def test_all_conversion_problems_are_reported_at_once() -> None:
    notion = FakeNotion()

    result = notion.send_one(_action("update", page=PAGE, properties={"Stage": 1, "Estimate": "x"}))

    assert "'Stage'" in result.reason
    assert "'Estimate'" in result.reason


def test_a_page_in_the_trash_fails_without_a_write() -> None:
    notion = FakeNotion()

    result = notion.send_one(_action("update", page=TRASHED, properties={"Status": "Done"}))

    assert result.outcome == "fail"
    assert "trash" in result.reason
    assert TRASHED in result.reason


def test_a_400_on_a_cached_schema_is_retried_once_with_a_fresh_read() -> None:
    # Given the page's types were cached, and Notion's schema changed since
    notion = FakeNotion()
    notion.patch.side_effect = [
        httpx.Response(200, json=_fixture("pages/launch-post.after.json")),
        _error("400-validation_error"),
        _error("400-validation_error"),
    ]
    done = _action("update", page=PAGE, properties={"Status": "Done"})

    results = notion.send((done, _context()), (done, _context()), (done, _context(attempt=2)))

    assert [r.outcome for r in results] == ["ok", "retry", "fail"]
    assert "cached schema" in results[1].reason
    assert notion.get_page.call_count == 2


def test_long_text_is_cut_at_2000_characters_with_a_marker() -> None:
    notion = FakeNotion()

    notion.send_one(_action("update", page=PAGE, properties={"Notes": "x" * 2500}))

    content = sent_json(notion.patch)["properties"]["Notes"]["rich_text"][0]["text"]["content"]
    assert len(content) == 2000
    assert content.endswith("…")


def test_a_mapping_value_is_sent_as_notions_own_shape() -> None:
    assert property_value("date", {"start": "2026-12-01", "end": "2026-12-03"}) == {
        "start": "2026-12-01",
        "end": "2026-12-03",
    }
    assert property_value("date", "2026-11-30T15:00:00+01:00/2026-11-30T16:00:00+01:00") == {
        "start": "2026-11-30T15:00:00+01:00",
        "end": "2026-11-30T16:00:00+01:00",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (PAGE, PAGE),
        (PAGE.replace("-", "").upper(), PAGE),
        ("https://www.notion.so/Write-launch-post-153104cd477e809d8dc4ff2d96ae3090", PAGE),
        ("Tracks https://www.notion.so/153104cd477e809d8dc4ff2d96ae3090?v=1 in Notion", PAGE),
    ],
)
def test_notion_id_reads_ids_and_urls(text: str, expected: str) -> None:
    assert notion_id(text, "page") == expected


@pytest.mark.parametrize("text", ["", "Write launch post", "https://example.com/" + "a" * 32])
def test_notion_id_rejects_what_is_not_a_notion_id(text: str) -> None:
    with pytest.raises(ValueError, match="page"):
        notion_id(text, "page")


# --- notion.comment ------------------------------------------------------------------------


def test_comment_on_a_page_returns_the_comment_id() -> None:
    notion = FakeNotion()

    result = notion.send_one(_action("comment", page=PAGE, text="Looks good, ship it"))

    assert result.outcome == "ok"
    assert result.ref == "9a718293-a4b5-4c6d-a7f8-091a2b3c4d56"
    assert sent_json(notion.comment) == {
        "parent": {"page_id": PAGE},
        "rich_text": _text("Looks good, ship it"),
    }


def test_comment_in_a_discussion_replies_there() -> None:
    notion = FakeNotion()
    discussion = "ab8293a4-b5c6-4d7e-b809-1a2b3c4d5e67"

    notion.send_one(_action("comment", discussion=discussion, text="Done"))

    assert sent_json(notion.comment) == {
        "discussion_id": discussion,
        "rich_text": _text("Done"),
    }


def test_a_long_comment_is_cut_at_2000_characters() -> None:
    notion = FakeNotion()

    notion.send_one(_action("comment", page=PAGE, text="y" * 5000))

    [item] = sent_json(notion.comment)["rich_text"]
    assert len(item["text"]["content"]) == 2000
    assert item["text"]["content"].endswith("…")


def test_a_resent_comment_that_was_delivered_is_not_posted_again() -> None:
    notion = FakeNotion()

    result = notion.send_one(
        _action("comment", page=PAGE, text="x"), _context(previous_ref="9a718293")
    )

    assert (result.outcome, result.ref) == ("ok", "9a718293")
    assert notion.requests == []


def test_comment_without_text_fails_without_a_request() -> None:
    notion = FakeNotion()

    result = notion.send_one(_action("comment", page=PAGE, text="  "))

    assert result.outcome == "fail"
    assert "text" in result.reason
    assert notion.requests == []


# --- notion.create -------------------------------------------------------------------------


def test_create_in_a_database_uses_its_data_source_and_title_property() -> None:
    notion = FakeNotion()
    action = _action(
        "create", database=DATABASE, title="Draft release notes", properties={"Status": "Done"}
    )

    result = notion.send_one(action)

    assert result.outcome == "ok"
    assert result.ref == OTHER_PAGE
    assert sent_json(notion.create) == {
        "parent": {"type": "data_source_id", "data_source_id": DATA_SOURCE},
        "properties": {
            "Name": {"title": _text("Draft release notes")},
            "Status": {"status": {"name": "Done"}},
        },
    }
    assert notion.query.call_count == 0


def test_the_database_schema_is_read_once_per_connector() -> None:
    notion = FakeNotion()
    create = _action("create", database=DATABASE, title="A")

    notion.send((create, _context()), (create, _context()))

    assert (notion.database.call_count, notion.data_source.call_count) == (1, 1)
    assert notion.create.call_count == 2


def test_create_in_a_data_source_reads_only_the_data_source() -> None:
    notion = FakeNotion()

    notion.send_one(_action("create", data_source=DATA_SOURCE, title="A"))

    assert notion.database.call_count == 0
    assert sent_json(notion.create)["parent"] == {
        "type": "data_source_id",
        "data_source_id": DATA_SOURCE,
    }


def test_before_data_sources_a_database_is_the_parent() -> None:
    # Given an older Notion-Version, whose database object carries the properties
    notion = FakeNotion()
    notion.database.return_value = httpx.Response(200, json=_fixture("databases/tasks.json"))
    ctx = _context(destination=_destination(notion_version="2022-06-28"))

    notion.send_one(_action("create", database=DATABASE, title="A"), ctx)

    assert sent_json(notion.create)["parent"] == {"database_id": DATABASE}
    assert notion.data_source.call_count == 0
    assert notion.requests[0].headers["notion-version"] == "2022-06-28"


def test_a_database_with_several_data_sources_fails_naming_them() -> None:
    notion = FakeNotion()
    database = _database_2025()
    database["data_sources"].append({"id": "d4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f70", "name": "Bugs"})
    notion.database.return_value = httpx.Response(200, json=database)

    result = notion.send_one(_action("create", database=DATABASE, title="A"))

    assert result.outcome == "fail"
    assert "Tasks, Bugs" in result.reason
    assert "data_source" in result.reason
    assert notion.create.call_count == 0


def test_title_given_twice_fails() -> None:
    notion = FakeNotion()

    result = notion.send_one(
        _action("create", data_source=DATA_SOURCE, title="A", properties={"Name": "B"})
    )

    assert result.outcome == "fail"
    assert "title once" in result.reason


def test_a_retried_create_adopts_the_page_an_earlier_attempt_made() -> None:
    # Given attempt 1 timed out after Notion had created the page
    notion = FakeNotion()
    notion.query.return_value = httpx.Response(200, json=_fixture("databases/tasks.query.json"))

    result = notion.send_one(
        _action("create", data_source=DATA_SOURCE, title="Write launch post"), _context(attempt=2)
    )

    assert (result.outcome, result.ref) == ("ok", PAGE)
    assert "earlier attempt" in result.reason
    assert notion.create.call_count == 0
    assert sent_json(notion.query)["filter"] == {
        "and": [
            {"property": "Name", "title": {"equals": "Write launch post"}},
            {"timestamp": "created_time", "created_time": {"on_or_after": "2026-11-21T13:00:00Z"}},
        ]
    }


def test_a_retried_create_creates_when_no_earlier_page_exists() -> None:
    notion = FakeNotion()

    result = notion.send_one(
        _action("create", data_source=DATA_SOURCE, title="A"), _context(attempt=3)
    )

    assert result.outcome == "ok"
    assert notion.query.call_count == 1
    assert notion.create.call_count == 1


def test_a_retried_create_whose_lookup_fails_does_not_create() -> None:
    notion = FakeNotion()
    notion.query.return_value = httpx.Response(
        503, json={"object": "error", "status": 503, "code": "service_unavailable", "message": "x"}
    )

    result = notion.send_one(
        _action("create", data_source=DATA_SOURCE, title="A"), _context(attempt=2)
    )

    assert result.outcome == "retry"
    assert notion.create.call_count == 0


def test_key_property_stores_the_delivery_key_and_retries_find_the_page_by_it() -> None:
    notion = FakeNotion()
    create = _action("create", data_source=DATA_SOURCE, title="A", key_property="Notes")

    notion.send((create, _context()), (create, _context(attempt=2)))

    assert sent_json(notion.create)["properties"]["Notes"] == {"rich_text": _text(KEY)}
    assert sent_json(notion.query)["filter"] == {
        "property": "Notes",
        "rich_text": {"equals": KEY},
    }


def test_a_resent_create_that_was_delivered_returns_the_page_without_requests() -> None:
    notion = FakeNotion()

    result = notion.send_one(
        _action("create", data_source=DATA_SOURCE, title="A"), _context(previous_ref=OTHER_PAGE)
    )

    assert (result.outcome, result.ref) == ("ok", OTHER_PAGE)
    assert notion.requests == []


# --- what the answer means -----------------------------------------------------------------

Reply = Callable[[httpx.Request], httpx.Response]


def _raise(exc_type: type[httpx.TransportError]) -> Reply:
    def reply(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return reply


def _notion_error(status: int, code: str, message: str) -> httpx.Response:
    body = {"object": "error", "status": status, "code": code, "message": message}
    return httpx.Response(status, json=body)


@dataclass(frozen=True)
class Case:
    reply: httpx.Response | Reply
    outcome: str
    after: float | None = None
    reason_has: str = ""


CASES: dict[str, Case] = {
    "400-validation_error-fails-with-notions-message": Case(
        _error("400-validation_error"), "fail", None, "body.properties.Status.status.name"
    ),
    "401-unauthorized-fails-naming-the-token": Case(
        _error("401-unauthorized"), "fail", None, "token"
    ),
    "403-restricted_resource-fails-asking-to-share": Case(
        _notion_error(
            403, "restricted_resource", "API token does not have access to this resource."
        ),
        "fail",
        None,
        "share the page",
    ),
    "404-object_not_found-fails-naming-the-id": Case(
        _error("404-object_not_found"), "fail", None, f"page {PAGE}"
    ),
    "409-conflict_error-retries": Case(
        _notion_error(409, "conflict_error", "Conflict occurred while saving. Please try again."),
        "retry",
    ),
    "429-retries-after-retry-after": Case(_error("429-rate_limited"), "retry", 2.0, "rate_limited"),
    "500-retries": Case(_notion_error(500, "internal_server_error", "Unexpected error."), "retry"),
    "502-html-retries": Case(httpx.Response(502, text="<html>Bad Gateway</html>"), "retry"),
    "503-retries": Case(
        _notion_error(503, "service_unavailable", "Notion is unavailable."), "retry"
    ),
    "504-retries": Case(_notion_error(504, "gateway_timeout", "Timed out."), "retry"),
    "read-timeout-retries": Case(_raise(httpx.ReadTimeout), "retry", None, "timed out"),
    "connect-timeout-retries": Case(_raise(httpx.ConnectTimeout), "retry", None, "timed out"),
    "connect-error-retries": Case(_raise(httpx.ConnectError), "retry", None, "ConnectError"),
}


def _update_answered_with(reply: httpx.Response | Reply) -> SendResult:
    notion = FakeNotion()
    if isinstance(reply, httpx.Response):
        notion.patch.return_value = reply
    else:
        notion.patch.side_effect = reply
    action = _action("update", page=PAGE, properties={"Status": "Done"}, types={"Status": "status"})
    return notion.send_one(action)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_notion_answer_maps_to_ok_retry_or_fail(case: Case) -> None:
    result = _update_answered_with(case.reply)

    assert result.outcome == case.outcome
    assert result.after == case.after
    assert case.reason_has in result.reason


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_token_never_appears_in_a_result(case: Case) -> None:
    assert TOKEN not in repr(_update_answered_with(case.reply))


def test_token_echoed_in_an_error_body_is_redacted() -> None:
    result = _update_answered_with(_notion_error(401, "unauthorized", f"bad token {TOKEN}"))

    assert TOKEN not in result.reason
    assert "REDACTED" in result.reason


def test_errors_reading_the_page_are_classified_and_nothing_is_written() -> None:
    notion = FakeNotion()
    notion.get_page.return_value = _error("404-object_not_found")

    result = notion.send_one(_action("update", page=PAGE, properties={"Status": "Done"}))

    assert result.outcome == "fail"
    assert "reading page" in result.reason
    assert notion.patch.call_count == 0


def test_a_403_on_comment_names_the_comment_capability() -> None:
    notion = FakeNotion()
    notion.comment.return_value = _notion_error(
        403, "restricted_resource", "Insufficient permissions for this endpoint."
    )

    result = notion.send_one(_action("comment", page=PAGE, text="x"))

    assert result.outcome == "fail"
    assert "Insert comments" in result.reason


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("operation", [None, "delete", "archive"])
def test_an_unknown_or_missing_operation_fails_listing_the_operations(
    operation: str | None,
) -> None:
    notion = FakeNotion()

    result = notion.send_one(_action(operation, page=PAGE))

    assert result.outcome == "fail"
    assert "notion.update, notion.comment or notion.create" in result.reason
    assert notion.requests == []


def test_destination_without_a_token_fails_without_a_request() -> None:
    notion = FakeNotion()
    no_token = Destination(name="notion", connector="notion", options={"api_url": API})

    result = notion.send_one(
        _action("update", page=PAGE, properties={}), _context(destination=no_token)
    )

    assert result.outcome == "fail"
    assert "token" in result.reason
    assert notion.requests == []


def test_api_url_defaults_to_api_notion_com() -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json=_fixture("comments/created.json"))

    destination = Destination(name="notion", connector="notion", options={"token": Secret(TOKEN)})
    action = _action("comment", page=PAGE, text="x")
    sends = [(action, _context(destination=destination))]

    [result] = send_in_order(NotionConnector, record, sends, base_dir=REPO)
    assert result.outcome == "ok"
    assert seen == ["https://api.notion.com/v1/comments"]


def test_params_schema_rejects_page_and_discussion_together() -> None:
    validator = jsonschema.Draft202012Validator(NotionConnector.params_schema)

    assert list(validator.iter_errors({"workspace": "n", "page": PAGE, "discussion": PAGE}))
    assert not list(validator.iter_errors({"workspace": "n", "page": PAGE, "text": "x"}))


def test_the_docs_example_actions_validate() -> None:
    validator = jsonschema.Draft202012Validator(NotionConnector.params_schema)
    examples = [
        {
            "workspace": "notion",
            "page": "{{ event.data.raw.issue.body }}",
            "database": DATABASE,
            "properties": {"Status": "Done", "Done": True},
        },
        {"workspace": "notion", "page": "{{ event.data.entity.id }}", "text": "Closed"},
        {
            "workspace": "notion",
            "data_source": DATA_SOURCE,
            "title": "{{ event.data.entity.title }}",
            "properties": {"Tags": ["github"], "Due": "2026-12-01"},
            "key_property": "Switchboard key",
        },
    ]
    for params in examples:
        assert not list(validator.iter_errors(params)), params
