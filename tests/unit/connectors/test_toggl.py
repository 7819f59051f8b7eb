"""TogglConnector against a respx fake of the Toggl Track v9 API, with the real shapes."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import jsonschema
import pytest

from connectors.base import (
    DeliveryContext,
    Destination,
    RenderedAction,
    SendResult,
)
from connectors.toggl import TogglConnector, parse_duration_s
from hub.secrets import Secret
from tests.connector_support import (
    RespxService,
    delivery_context,
    rendered_action,
    send_in_order,
    sent_json,
)
from tests.support import REPO, fixture_json

API = "https://toggl.test/api/v9"
TOKEN = "toggl-token-not-real-5f1c"
WORKSPACE_ID = 7654321
ENTRY_ID = "3712345678"
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
ENTRIES = f"/workspaces/{WORKSPACE_ID}/time_entries"
PROJECTS = f"/workspaces/{WORKSPACE_ID}/projects"
STOP = f"{ENTRIES}/{ENTRY_ID}/stop"
CURRENT = "/me/time_entries/current"


def _fixture(name: str) -> Any:
    return fixture_json("toggl", name)


def _destination(**options: Any) -> Destination:
    return Destination(
        name="toggl",
        connector="toggl",
        options={
            "workspace_id": WORKSPACE_ID,
            "api_token": Secret(TOKEN, origin="env:TOGGL_API_TOKEN"),
            "api_url": API,
            **options,
        },
    )


def _context(
    *,
    refs: Mapping[str, str] | None = None,
    attempt: int = 1,
    now: datetime = NOW,
    destination: Destination | None = None,
) -> DeliveryContext:
    return delivery_context(
        destination or _destination(),
        now=now,
        rule_id="task-started",
        attempt=attempt,
        entity_key="notion/workspace/acme|task|153104cd",
        entity_refs=refs,
    )


def _action(operation: str | None, **params: Any) -> RenderedAction:
    return rendered_action(
        "toggl", "toggl", params, operation=operation, destination_param="workspace"
    )


class FakeToggl(RespxService):
    """A respx router standing in for api.track.toggl.com."""

    def __init__(self) -> None:
        super().__init__(TogglConnector, API, _context)
        self.projects = self.router.get(PROJECTS).mock(
            return_value=httpx.Response(200, json=_fixture("projects.list.json"))
        )
        self.create = self.router.post(ENTRIES).mock(
            return_value=httpx.Response(200, json=_fixture("time_entry.running.json"))
        )
        self.stop = self.router.patch(STOP).mock(
            return_value=httpx.Response(200, json=_fixture("time_entry.stopped.json"))
        )
        self.current = self.router.get(CURRENT).mock(return_value=httpx.Response(200, json=None))


START_PARAMS: dict[str, Any] = {
    "description": "Write launch post",
    "project": "Website relaunch",
    "tags": ["notion"],
    "billable": False,
}


# --- toggl.start ---------------------------------------------------------------------------


def test_start_posts_the_documented_running_entry_and_returns_its_id() -> None:
    toggl = FakeToggl()

    result = toggl.send_one(_action("start", **START_PARAMS))

    assert result.outcome == "ok"
    assert result.ref == ENTRY_ID
    assert sent_json(toggl.create) == {
        **_fixture("time_entry.create.request.json"),
        "created_with": "switchboard",
    }


def test_start_time_is_ctx_now_in_utc_whatever_the_clock_zone() -> None:
    toggl = FakeToggl()
    berlin = datetime(2026, 11, 21, 10, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))

    toggl.send_one(_action("start", description="x"), _context(now=berlin))

    body = sent_json(toggl.create)
    assert body["start"] == "2026-11-21T09:00:00Z"
    assert body["duration"] == -1
    assert body["stop"] is None


def test_requests_use_basic_auth_with_the_token_and_api_token() -> None:
    toggl = FakeToggl()

    toggl.send_one(_action("start", **START_PARAMS))

    expected = "Basic " + base64.b64encode(f"{TOKEN}:api_token".encode()).decode()
    assert [r.headers["authorization"] for r in toggl.requests] == [expected, expected]


def test_start_with_project_id_does_not_list_projects() -> None:
    toggl = FakeToggl()

    toggl.send_one(_action("start", description="x", project_id="201234890"))

    assert sent_json(toggl.create)["project_id"] == 201234890
    assert toggl.projects.call_count == 0


def test_project_name_is_matched_ignoring_case_among_active_projects() -> None:
    toggl = FakeToggl()

    toggl.send_one(_action("start", project="internal TOOLING"))

    assert sent_json(toggl.create)["project_id"] == 201234890
    params = toggl.projects.calls.last.request.url.params
    assert params["active"] == "true"


def test_project_names_are_listed_once_per_connector() -> None:
    toggl = FakeToggl()
    start = _action("start", description="x", project="Website relaunch")
    other = _action("start", description="y", project="Internal tooling")

    results = toggl.send((start, _context()), (start, _context()), (other, _context()))

    assert [r.outcome for r in results] == ["ok", "ok", "ok"]
    assert toggl.projects.call_count == 1
    assert toggl.create.call_count == 3


def test_unknown_project_name_fails_naming_it_without_creating_an_entry() -> None:
    toggl = FakeToggl()

    result = toggl.send_one(_action("start", project="Moon base"))

    assert result.outcome == "fail"
    assert "'Moon base'" in result.reason
    assert str(WORKSPACE_ID) in result.reason
    assert toggl.create.call_count == 0


def test_a_project_rejected_by_toggl_is_looked_up_again_next_time() -> None:
    # Given a cached name whose project was archived since, so Toggl answers 400
    toggl = FakeToggl()
    toggl.create.side_effect = [
        httpx.Response(400, json="Invalid project_id"),
        httpx.Response(200, json=_fixture("time_entry.running.json")),
    ]
    start = _action("start", project="Website relaunch")

    results = toggl.send((start, _context()), (start, _context()))

    assert [r.outcome for r in results] == ["fail", "ok"]
    assert toggl.projects.call_count == 2


def test_project_list_errors_are_classified_and_nothing_is_created() -> None:
    toggl = FakeToggl()
    toggl.projects.return_value = httpx.Response(503, text="upstream down")

    result = toggl.send_one(_action("start", project="Website relaunch"))

    assert result.outcome == "retry"
    assert "listing projects" in result.reason
    assert toggl.create.call_count == 0


def test_tags_given_as_a_comma_string_are_split() -> None:
    toggl = FakeToggl()

    toggl.send_one(_action("start", tags="notion, launch ,,"))

    assert sent_json(toggl.create)["tags"] == ["notion", "launch"]


@pytest.mark.parametrize(("given", "sent"), [("true", True), ("False", False), (True, True)])
def test_billable_accepts_booleans_and_rendered_text(given: Any, sent: bool) -> None:
    toggl = FakeToggl()

    toggl.send_one(_action("start", billable=given))

    assert sent_json(toggl.create)["billable"] is sent


def test_billable_that_is_not_a_boolean_fails_without_a_request() -> None:
    toggl = FakeToggl()

    result = toggl.send_one(_action("start", billable="maybe"))

    assert result.outcome == "fail"
    assert "maybe" in result.reason
    assert toggl.requests == []


def test_first_attempt_does_not_ask_for_the_running_entry() -> None:
    toggl = FakeToggl()

    toggl.send_one(_action("start", **START_PARAMS))

    assert toggl.current.call_count == 0


def test_retried_start_adopts_the_entry_an_earlier_attempt_started() -> None:
    # Given attempt 1 timed out after Toggl had created the entry
    toggl = FakeToggl()
    toggl.current.return_value = httpx.Response(200, json=_fixture("time_entry.running.json"))

    result = toggl.send_one(_action("start", **START_PARAMS), _context(attempt=2))

    assert result.outcome == "ok"
    assert result.ref == ENTRY_ID
    assert toggl.create.call_count == 0


def test_retried_start_creates_when_a_different_entry_is_running() -> None:
    toggl = FakeToggl()
    toggl.current.return_value = httpx.Response(200, json=_fixture("time_entry.running.json"))
    params = {**START_PARAMS, "description": "Review launch post"}

    result = toggl.send_one(_action("start", **params), _context(attempt=2))

    assert result.outcome == "ok"
    assert toggl.create.call_count == 1


def test_retried_start_creates_when_nothing_is_running() -> None:
    toggl = FakeToggl()

    toggl.send_one(_action("start", **START_PARAMS), _context(attempt=3))

    assert toggl.current.call_count == 1
    assert toggl.create.call_count == 1


# --- toggl.stop ----------------------------------------------------------------------------


def test_stop_patches_the_entry_started_for_the_same_entity() -> None:
    toggl = FakeToggl()

    result = toggl.send_one(_action("stop"), _context(refs={"start": ENTRY_ID}))

    assert result.outcome == "ok"
    assert result.ref == ENTRY_ID
    [request] = toggl.requests
    assert request.method == "PATCH"
    assert request.url.path == f"/api/v9{STOP}"


def test_stop_with_nothing_started_is_ok_with_a_note_and_sends_nothing() -> None:
    toggl = FakeToggl()

    result = toggl.send_one(_action("stop"), _context(refs={"create": "99"}))

    assert result.outcome == "ok"
    assert result.ref is None
    assert "nothing to stop" in result.reason
    assert toggl.requests == []


def test_stop_of_an_entry_already_stopped_by_us_sends_nothing() -> None:
    toggl = FakeToggl()

    result = toggl.send_one(_action("stop"), _context(refs={"start": ENTRY_ID, "stop": ENTRY_ID}))

    assert result.outcome == "ok"
    assert "already stopped" in result.reason
    assert toggl.requests == []


def test_stop_after_a_new_start_stops_the_new_entry() -> None:
    toggl = FakeToggl()
    refs = {"start": ENTRY_ID, "stop": "3712340000"}

    result = toggl.send_one(_action("stop"), _context(refs=refs))

    assert result.ref == ENTRY_ID
    assert toggl.stop.call_count == 1


def test_stop_conflict_means_someone_stopped_it_in_toggl_and_is_ok() -> None:
    toggl = FakeToggl()
    toggl.stop.return_value = httpx.Response(409, json="conflict")

    result = toggl.send_one(_action("stop"), _context(refs={"start": ENTRY_ID}))

    assert result.outcome == "ok"
    assert result.ref == ENTRY_ID
    assert "already stopped" in result.reason


def test_stop_of_an_entry_deleted_in_toggl_fails_naming_the_entry() -> None:
    toggl = FakeToggl()
    toggl.stop.return_value = httpx.Response(404, json="Time entry not found")

    result = toggl.send_one(_action("stop"), _context(refs={"start": ENTRY_ID}))

    assert result.outcome == "fail"
    assert ENTRY_ID in result.reason
    assert "Time entry not found" in result.reason


# --- toggl.create --------------------------------------------------------------------------


def test_create_posts_a_finished_entry_that_ends_now() -> None:
    toggl = FakeToggl()
    toggl.create.return_value = httpx.Response(200, json=_fixture("time_entry.stopped.json"))

    result = toggl.send_one(_action("create", description="Call", duration="1h30m"))

    body = sent_json(toggl.create)
    assert body["duration"] == 5400
    assert body["start"] == "2026-11-21T07:30:00Z"
    assert "stop" not in body
    assert body["created_with"] == "switchboard"
    assert result.ref == ENTRY_ID


def test_create_uses_the_start_given() -> None:
    toggl = FakeToggl()

    toggl.send_one(_action("create", duration=600, start="2026-11-20T16:00:00+01:00"))

    body = sent_json(toggl.create)
    assert body["start"] == "2026-11-20T15:00:00Z"
    assert body["duration"] == 600


@pytest.mark.parametrize(
    ("params", "reason_has"),
    [
        pytest.param({}, "needs a duration", id="no-duration"),
        pytest.param({"duration": "soon"}, "soon", id="bad-duration"),
        pytest.param({"duration": 0}, "at least one second", id="zero-duration"),
        pytest.param({"duration": 60, "start": "yesterday"}, "yesterday", id="bad-start"),
        pytest.param({"duration": 60, "start": "2026-11-20T16:00:00"}, "time zone", id="naive"),
    ],
)
def test_create_with_bad_params_fails_without_a_request(
    params: dict[str, Any], reason_has: str
) -> None:
    toggl = FakeToggl()

    result = toggl.send_one(_action("create", **params))

    assert result.outcome == "fail"
    assert reason_has in result.reason
    assert toggl.requests == []


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (90, 90),
        ("90", 90),
        ("45m", 2700),
        ("1h30m", 5400),
        ("2h", 7200),
        ("1m30s", 90),
        ("1.5h", 5400),
        ("2d", 172800),
    ],
)
def test_parse_duration_s(value: Any, seconds: int) -> None:
    assert parse_duration_s(value) == seconds


@pytest.mark.parametrize("value", ["", "h", "0", "-5", True, "30 minutes"])
def test_parse_duration_s_rejects_what_is_not_a_duration(value: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration_s(value)


# --- what the answer means -----------------------------------------------------------------

Reply = Callable[[httpx.Request], httpx.Response]


def _raise(exc_type: type[httpx.TransportError]) -> Reply:
    def reply(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return reply


@dataclass(frozen=True)
class Case:
    reply: httpx.Response | Reply
    outcome: str
    after: float | None = None
    reason_has: str = ""


CASES: dict[str, Case] = {
    "401-fails-naming-the-token": Case(
        httpx.Response(401, text="Unauthorized"), "fail", None, "api_token"
    ),
    "403-fails-naming-the-token": Case(httpx.Response(403, text=""), "fail", None, "api_token"),
    "402-with-quota-reset-retries-after-the-reset": Case(
        httpx.Response(
            402,
            json="You have hit your hourly limit for API calls.",
            headers={"X-Toggl-Quota-Remaining": "0", "X-Toggl-Quota-Resets-In": "1742"},
        ),
        "retry",
        1742.0,
        "quota",
    ),
    "402-with-quota-spent-but-no-reset-retries-with-backoff": Case(
        httpx.Response(402, text="Payment Required", headers={"X-Toggl-Quota-Remaining": "0"}),
        "retry",
        None,
        "quota",
    ),
    "402-for-a-plan-feature-fails": Case(
        httpx.Response(402, json="Billable is a premium feature"), "fail", None, "plan"
    ),
    "429-retries-after-retry-after": Case(
        httpx.Response(429, text="Too Many Requests", headers={"Retry-After": "2"}), "retry", 2.0
    ),
    "429-without-retry-after-uses-engine-backoff": Case(httpx.Response(429), "retry", None),
    "500-retries": Case(httpx.Response(500, json="Internal Server Error"), "retry"),
    "502-retries": Case(httpx.Response(502, text="<html>Bad Gateway</html>"), "retry"),
    "503-retries": Case(httpx.Response(503, text="Service Unavailable"), "retry"),
    "400-fails-with-togglS-message": Case(
        httpx.Response(400, json="Workspace does not have a tag 'nope'"), "fail", None, "tag 'nope'"
    ),
    "400-plain-text-message-is-kept": Case(
        httpx.Response(400, text="invalid start time\n"), "fail", None, "invalid start time"
    ),
    "404-fails": Case(httpx.Response(404, text="Not Found"), "fail", None, "404"),
    "read-timeout-retries": Case(_raise(httpx.ReadTimeout), "retry", None, "timed out"),
    "connect-timeout-retries": Case(_raise(httpx.ConnectTimeout), "retry", None, "timed out"),
    "connect-error-retries": Case(_raise(httpx.ConnectError), "retry", None, "ConnectError"),
}


def _start_answered_with(reply: httpx.Response | Reply) -> SendResult:
    toggl = FakeToggl()
    if isinstance(reply, httpx.Response):
        toggl.create.return_value = reply
    else:
        toggl.create.side_effect = reply
    return toggl.send_one(_action("start", description="x", project_id=1))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_toggl_answer_maps_to_ok_retry_or_fail(case: Case) -> None:
    result = _start_answered_with(case.reply)

    assert result.outcome == case.outcome
    assert result.after == case.after
    assert case.reason_has in result.reason


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_api_token_never_appears_in_a_result(case: Case) -> None:
    result = _start_answered_with(case.reply)

    assert TOKEN not in repr(result)


def test_token_echoed_in_an_error_body_is_redacted() -> None:
    result = _start_answered_with(httpx.Response(403, text=f"bad token {TOKEN}"))

    assert TOKEN not in result.reason
    assert "REDACTED" in result.reason


def test_error_reason_names_the_operation_workspace_and_destination() -> None:
    result = _start_answered_with(httpx.Response(400, json="duration is invalid"))

    assert "toggl.start" in result.reason
    assert str(WORKSPACE_ID) in result.reason
    assert "'toggl'" in result.reason
    assert result.status_code == 400


def test_the_last_request_of_the_quota_pauses_the_destination_until_the_reset() -> None:
    spent = {"X-Toggl-Quota-Remaining": "0", "X-Toggl-Quota-Resets-In": "900"}
    running = _fixture("time_entry.running.json")

    result = _start_answered_with(httpx.Response(200, json=running, headers=spent))

    assert result.outcome == "ok"
    assert result.pause_s == 900.0


def test_quota_left_does_not_pause() -> None:
    left = {"X-Toggl-Quota-Remaining": "12", "X-Toggl-Quota-Resets-In": "900"}
    running = _fixture("time_entry.running.json")

    result = _start_answered_with(httpx.Response(200, json=running, headers=left))

    assert result.pause_s is None


# --- configuration -------------------------------------------------------------------------


@pytest.mark.parametrize("operation", [None, "pause", "update"])
def test_an_unknown_or_missing_operation_fails_listing_the_operations(
    operation: str | None,
) -> None:
    toggl = FakeToggl()

    result = toggl.send_one(_action(operation, description="x"))

    assert result.outcome == "fail"
    assert "toggl.start, toggl.stop or toggl.create" in result.reason
    assert toggl.requests == []


def test_destination_without_api_token_fails_without_a_request() -> None:
    toggl = FakeToggl()
    no_token = Destination(
        name="toggl", connector="toggl", options={"workspace_id": WORKSPACE_ID, "api_url": API}
    )

    result = toggl.send_one(_action("start"), _context(destination=no_token))

    assert result.outcome == "fail"
    assert "api_token" in result.reason
    assert toggl.requests == []


def test_api_url_defaults_to_the_toggl_track_v9_api() -> None:
    seen: list[httpx.URL] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        return httpx.Response(200, json=_fixture("time_entry.running.json"))

    destination = Destination(
        name="toggl",
        connector="toggl",
        options={"workspace_id": WORKSPACE_ID, "api_token": Secret(TOKEN)},
    )
    sends = [(_action("start"), _context(destination=destination))]

    [result] = send_in_order(TogglConnector, record, sends, base_dir=REPO)
    assert result.outcome == "ok"
    assert [str(u) for u in seen] == [
        f"https://api.track.toggl.com/api/v9/workspaces/{WORKSPACE_ID}/time_entries"
    ]


def test_params_schema_rejects_a_project_name_and_id_together() -> None:
    validator = jsonschema.Draft202012Validator(TogglConnector.params_schema)
    params = {"workspace": "toggl", "project": "Website relaunch", "project_id": 1}

    assert list(validator.iter_errors(params))
    assert not list(validator.iter_errors({"workspace": "toggl", **START_PARAMS}))
