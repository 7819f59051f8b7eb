"""GcalConnector against a fake Calendar API + token endpoint (in process, ASGI transport)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import shutil
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from connectors.base import ConnectorEnv, DeliveryContext, Destination, SendResult
from connectors.gcal import GcalConnector, google_event_id
from hub.clock import FakeClock
from hub.config import load_settings
from hub.plugins import Plugins, load_plugins
from hub.rules.categories import train_categories
from hub.rules.templates import TemplateEngine
from hub.rules.testing import run_rule_tests
from hub.runtime import load_rules
from hub.secrets import Secret
from tests.connector_support import delivery_context, rendered_action
from tests.fakes.gcal import (
    CALENDAR_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    SERVICE_ACCOUNT,
    FakeGoogleCalendar,
    gcal_fixture,
    google_error,
    service_account_key,
)

REPO = Path(__file__).resolve().parents[3]
BASE = "http://gcal.test"
NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
ENTITY = "notion/workspace/acme|job_review|153104cd-477e-809d-8dc4-ff2d96ae3090"
EVENTS_PATH = f"/calendar/v3/calendars/{CALENDAR_ID}/events"
REVIEW = {
    "calendar": "reviews",
    "summary": "Review: Grace Hopper",
    "description": "Notion: https://www.notion.so/153104cd477e809d8dc4ff2d96ae3090",
    "start": "2026-11-24T15:00:00.000+01:00",
    "duration": "45m",
    "timezone": "Europe/Berlin",
    "attendees": "ada@example.com, linus@example.com",
    "meet": "true",
    "reminders": "popup:10,email:1440",
}


def _destination(**options: Any) -> Destination:
    return Destination(
        name="reviews",
        connector="gcal",
        options={
            "calendar_id": CALENDAR_ID,
            "client_id": CLIENT_ID,
            "client_secret": Secret(CLIENT_SECRET, origin="env:GOOGLE_CLIENT_SECRET"),
            "refresh_token": Secret(REFRESH_TOKEN, origin="env:GOOGLE_REFRESH_TOKEN"),
            "api_url": f"{BASE}/calendar/v3",
            "token_url": f"{BASE}/token",
            **options,
        },
    )


def _ctx(
    *, entity_key: str | None = ENTITY, now: datetime = NOW, attempt: int = 1
) -> DeliveryContext:
    return delivery_context(
        _destination(),
        now=now,
        rule_id="job-review-scheduled",
        attempt=attempt,
        entity_key=entity_key,
    )


class Harness:
    """The connector wired to the fake through httpx's ASGI transport (no sockets)."""

    def __init__(self, fake: FakeGoogleCalendar) -> None:
        self.fake = fake
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app()))
        self.connector = GcalConnector(ConnectorEnv(http=self.http, base_dir=Path(".")))

    def send(
        self, operation: str | None, params: Mapping[str, Any], ctx: DeliveryContext | None = None
    ) -> SendResult:
        action = rendered_action("gcal", "reviews", params, operation=operation)
        return asyncio.run(self.connector.send(action, ctx or _ctx()))


@pytest.fixture
def gcal() -> Harness:
    return Harness(FakeGoogleCalendar())


def _event_id() -> str:
    return google_event_id({}, _ctx(), "create")


def test_create_inserts_an_event_with_an_id_derived_from_the_entity(gcal: Harness) -> None:
    result = gcal.send("create", REVIEW)

    assert result.outcome == "ok", result.reason
    event_id = _event_id()
    assert re.fullmatch(r"[a-v0-9]{5,1024}", event_id)
    assert result.ref == event_id
    [insert] = gcal.fake.api_requests("POST")
    assert insert.path == EVENTS_PATH
    assert insert.query == {"conferenceDataVersion": "1", "sendUpdates": "all"}
    assert insert.authorization == "Bearer ya29.fake-access-1"
    body = insert.body
    assert body["id"] == event_id
    assert body["summary"] == "Review: Grace Hopper"
    assert body["start"] == {"dateTime": "2026-11-24T15:00:00+01:00", "timeZone": "Europe/Berlin"}
    assert body["end"] == {"dateTime": "2026-11-24T15:45:00+01:00", "timeZone": "Europe/Berlin"}
    assert body["attendees"] == [{"email": "ada@example.com"}, {"email": "linus@example.com"}]
    assert body["conferenceData"] == {
        "createRequest": {
            "requestId": f"switchboard-{event_id[:40]}",
            "conferenceSolutionKey": {"type": "hangoutsMeet"},
        }
    }
    assert body["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "popup", "minutes": 10}, {"method": "email", "minutes": 1440}],
    }
    assert body["extendedProperties"]["private"] == {
        "switchboardRule": "job-review-scheduled",
        "switchboardEntity": ENTITY,
    }
    stored = gcal.fake.events[event_id]
    assert stored["hangoutLink"] == gcal_fixture("events.insert.response.json")["hangoutLink"]


def test_a_replayed_create_patches_the_same_event_instead_of_duplicating(gcal: Harness) -> None:
    first = gcal.send("create", REVIEW)
    again = gcal.send("create", {**REVIEW, "summary": "Review: G. Hopper"}, _ctx(attempt=2))

    assert first.outcome == again.outcome == "ok"
    assert again.status_code == 409
    assert "patched" in again.reason
    assert list(gcal.fake.events) == [_event_id()]
    assert gcal.fake.events[_event_id()]["summary"] == "Review: G. Hopper"
    patch = gcal.fake.api_requests("PATCH")[0]
    assert patch.path == f"{EVENTS_PATH}/{_event_id()}"
    assert patch.body["status"] == "confirmed"
    request_ids = {
        s.body["conferenceData"]["createRequest"]["requestId"] for s in gcal.fake.api_requests()
    }
    assert len(request_ids) == 1  # Google ignores a createRequest it has seen: one Meet


def test_update_patches_only_the_given_fields(gcal: Harness) -> None:
    gcal.send("create", REVIEW)
    moved = {
        "calendar": "reviews",
        "start": "2026-11-25T11:00:00+01:00",
        "duration": "45m",
        "attendees": ["ada@example.com", "grace@example.com"],
    }

    result = gcal.send("update", moved)

    assert result.outcome == "ok", result.reason
    patch = gcal.fake.api_requests("PATCH")[-1]
    assert set(patch.body) == {"start", "end", "attendees", "extendedProperties"}
    assert patch.body["end"] == {"dateTime": "2026-11-25T11:45:00+01:00"}
    event = gcal.fake.events[_event_id()]
    assert event["summary"] == "Review: Grace Hopper"
    assert [a["email"] for a in event["attendees"]] == ["ada@example.com", "grace@example.com"]


def test_update_of_an_event_not_made_yet_creates_it(gcal: Harness) -> None:
    result = gcal.send("update", REVIEW)

    assert result.outcome == "ok", result.reason
    assert [(s.method, s.status) for s in gcal.fake.api_requests()] == [
        ("PATCH", 404),
        ("POST", 200),
    ]
    assert gcal.fake.events[_event_id()]["status"] == "confirmed"


def test_update_without_times_of_a_missing_event_fails_saying_what_to_add(gcal: Harness) -> None:
    result = gcal.send("update", {"calendar": "reviews", "summary": "Renamed"})

    assert result.outcome == "fail"
    assert "add start and duration" in result.reason


def test_cancel_deletes_and_an_event_already_gone_is_ok(gcal: Harness) -> None:
    gcal.send("create", REVIEW)

    first = gcal.send("cancel", {"calendar": "reviews", "send_updates": "none"})
    second = gcal.send("cancel", {"calendar": "reviews"})
    never = gcal.send("cancel", {"calendar": "reviews"}, _ctx(entity_key="other|job_review|x"))

    assert (first.outcome, first.status_code, first.ref) == ("ok", 204, _event_id())
    assert gcal.fake.api_requests("DELETE")[0].query == {"sendUpdates": "none"}
    assert (second.outcome, second.status_code) == ("ok", 410)
    assert (never.outcome, never.status_code) == ("ok", 404)
    assert gcal.fake.events[_event_id()]["status"] == "cancelled"


def test_create_after_cancel_restores_the_event(gcal: Harness) -> None:
    gcal.send("create", REVIEW)
    gcal.send("cancel", {"calendar": "reviews"})

    result = gcal.send("create", REVIEW)

    assert result.outcome == "ok"
    assert gcal.fake.events[_event_id()]["status"] == "confirmed"


def test_an_event_key_makes_a_second_event_for_the_same_entity(gcal: Harness) -> None:
    gcal.send("create", REVIEW)
    gcal.send("create", {**REVIEW, "event_key": "debrief"})

    assert len(gcal.fake.events) == 2


def test_the_access_token_is_cached_until_it_expires(gcal: Harness) -> None:
    gcal.send("create", REVIEW)
    gcal.send("update", {"calendar": "reviews", "summary": "x"})
    assert len(gcal.fake.issued) == 1

    gcal.send("update", {"calendar": "reviews", "summary": "y"}, _ctx(now=NOW + timedelta(hours=1)))

    assert len(gcal.fake.issued) == 2
    [token_call, *_] = [s for s in gcal.fake.seen if s.path == "/token"]
    assert token_call.method == "POST"


def test_401_refreshes_the_token_once_and_sends_again(gcal: Harness) -> None:
    gcal.send("create", REVIEW)
    gcal.fake.revoked.add(gcal.fake.issued[0])

    result = gcal.send("update", {"calendar": "reviews", "summary": "Renamed"})

    assert result.outcome == "ok", result.reason
    assert [s.status for s in gcal.fake.api_requests("PATCH")] == [401, 200]
    assert len(gcal.fake.issued) == 2


def test_401_after_a_fresh_token_fails(gcal: Harness) -> None:
    auth_error = gcal_fixture("errors", "401-authError.json")
    gcal.fake.fail_next(401, auth_error)
    gcal.fake.fail_next(401, auth_error)

    result = gcal.send("create", REVIEW)

    assert (result.outcome, result.status_code) == ("fail", 401)
    assert "Invalid Credentials (authError)" in result.reason
    assert len(gcal.fake.issued) == 2


@pytest.mark.parametrize(
    ("status", "body", "headers", "outcome", "after"),
    [
        (403, gcal_fixture("errors", "403-rateLimitExceeded.json"), {}, "retry", None),
        (
            403,
            google_error(403, "userRateLimitExceeded", "User Rate Limit Exceeded", "usageLimits"),
            {"Retry-After": "3"},
            "retry",
            3.0,
        ),
        (403, google_error(403, "forbiddenForNonOrganizer", "Forbidden"), {}, "fail", None),
        (429, google_error(429, "rateLimitExceeded", "Too many"), {"Retry-After": "7"}, "retry", 7),
        (503, google_error(503, "backendError", "Backend Error"), {"Retry-After": "2"}, "retry", 2),
        (500, google_error(500, "backendError", "Backend Error"), {}, "retry", None),
        (
            400,
            google_error(400, "timeRangeEmpty", "The specified time range is empty."),
            {},
            "fail",
            None,
        ),
        (404, google_error(404, "notFound", "Not Found"), {}, "fail", None),
    ],
)
def test_google_answers_are_classified(
    gcal: Harness,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str],
    outcome: str,
    after: float | None,
) -> None:
    gcal.fake.fail_next(status, body, headers)

    result = gcal.send("create", REVIEW)

    assert (result.outcome, result.status_code, result.after) == (outcome, status, after)
    assert body["error"]["message"] in result.reason


def test_a_revoked_refresh_token_fails_without_leaking_credentials(gcal: Harness) -> None:
    gcal.fake.refresh_token = "1//a-different-grant"

    result = gcal.send("create", REVIEW)

    assert result.outcome == "fail"
    assert "invalid_grant" in result.reason
    assert "grant access again" in result.reason
    for secret in (CLIENT_SECRET, REFRESH_TOKEN, CLIENT_ID):
        assert secret not in result.reason


def test_token_endpoint_down_is_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": "backend_error"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    connector = GcalConnector(ConnectorEnv(http=http, base_dir=Path(".")))
    action = rendered_action("gcal", "reviews", REVIEW, operation="create")

    result = asyncio.run(connector.send(action, _ctx()))

    assert result.outcome == "retry"
    assert "503" in result.reason


def test_no_reason_ever_carries_a_credential(gcal: Harness) -> None:
    reasons: list[str] = []
    for status in (400, 401, 403, 404, 429, 500):
        gcal.fake.fail_next(
            status, google_error(status, "x", f"echo {REFRESH_TOKEN} {CLIENT_SECRET}")
        )
        gcal.fake.fail_next(status, google_error(status, "x", "again"))
        reasons.append(gcal.send("create", REVIEW).reason)
    for reason in reasons:
        assert REFRESH_TOKEN not in reason
        assert CLIENT_SECRET not in reason
        assert "ya29." not in reason


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-11-24T15:00:00+01:00"}, "needs end or duration"),
        ({"start": "2026-11-24T15:00:00", "duration": "1h"}, "has no offset; set timezone"),
        ({"summary": "no time"}, "gcal.create needs a start"),
        ({"start": "2026-11-24", "duration": "45x"}, "'45x' is not a duration; write seconds"),
        ({"start": "2026-11-24T15:00:00Z", "end": "2026-11-24T14:00:00Z"}, "is not after start"),
        ({"start": "2026-11-24T15:00:00Z", "end": "2026-11-25"}, "both be dates or both be times"),
        ({"start": "2026-11-24", "attendees": "ada, grace@example.com"}, "not an email address"),
        ({"start": "2026-11-24", "reminders": "sms:10"}, "is not method:minutes"),
        ({"start": "2026-11-24", "meet": "maybe"}, "is not true or false"),
        ({"start": "2026-11-24", "send_updates": "everyone"}, "must be one of"),
        ({"start": "2026-11-24", "event_id": "not_base32hex!"}, "is not a Google event id"),
    ],
)
def test_bad_parameters_fail_before_any_request(
    gcal: Harness, params: dict[str, Any], message: str
) -> None:
    result = gcal.send("create", {"calendar": "reviews", **params})

    assert result.outcome == "fail"
    assert message in result.reason
    assert gcal.fake.seen == []


def test_an_all_day_start_ends_the_next_day(gcal: Harness) -> None:
    result = gcal.send(
        "create", {"calendar": "reviews", "summary": "Freeze", "start": "2026-11-27"}
    )

    assert result.outcome == "ok"
    body = gcal.fake.api_requests("POST")[0].body
    assert (body["start"], body["end"]) == ({"date": "2026-11-27"}, {"date": "2026-11-28"})
    assert "conferenceData" not in body


def test_update_and_cancel_need_an_entity_or_an_event_id(gcal: Harness) -> None:
    no_entity = _ctx(entity_key=None)
    assert "give event_id" in gcal.send("cancel", {"calendar": "reviews"}, no_entity).reason

    gcal.send("create", REVIEW)
    result = gcal.send("cancel", {"calendar": "reviews", "event_id": _event_id()}, no_entity)

    assert (result.outcome, result.status_code) == ("ok", 204)


def test_unknown_operation_and_missing_credentials_fail(gcal: Harness) -> None:
    assert "use gcal.create" in gcal.send("invite", REVIEW).reason
    assert "use gcal.create" in gcal.send(None, REVIEW).reason
    bare = Destination(name="reviews", connector="gcal", options={"client_id": CLIENT_ID})
    action = rendered_action("gcal", "reviews", REVIEW, operation="create")
    ctx = dataclasses.replace(_ctx(entity_key=None), destination=bare)
    result = asyncio.run(gcal.connector.send(action, ctx))
    assert result.outcome == "fail"
    assert "needs service_account, or client_id, client_secret and refresh_token" in result.reason


def test_a_review_invite_and_a_refresh_token_destination_validate() -> None:
    # Property examples: tests/unit/connectors/test_schema_contract.py.
    jsonschema.validate(REVIEW, GcalConnector.params_schema)
    jsonschema.validate(
        {"client_id": CLIENT_ID, "client_secret": {"env": "S"}, "refresh_token": {"env": "R"}},
        GcalConnector.destination_schema,
    )


def test_all_day_start_with_a_meeting_length_and_an_empty_end_is_one_day(gcal: Harness) -> None:
    params = {"calendar": "reviews", "start": "2026-11-27", "end": "", "duration": "45m"}

    result = gcal.send("create", params)

    assert result.outcome == "ok", result.reason
    body = gcal.fake.api_requests("POST")[0].body
    assert (body["start"], body["end"]) == ({"date": "2026-11-27"}, {"date": "2026-11-28"})


def test_the_job_review_rules_pass_check_and_their_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the shipped example config with a gcal destination, and gcal installed by hand
    # (its entry point may not be registered yet).
    config = yaml.safe_load((REPO / "switchboard.example.yaml").read_text(encoding="utf-8"))
    config["destinations"]["job-reviews"] = {
        "connector": "gcal",
        "client_id": {"env": "GOOGLE_CLIENT_ID", "optional": True},
        "client_secret": {"env": "GOOGLE_CLIENT_SECRET", "optional": True},
        "refresh_token": {"env": "GOOGLE_REFRESH_TOKEN", "optional": True},
        "timezone": "Europe/Berlin",
    }
    (tmp_path / "switchboard.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    monkeypatch.chdir(tmp_path)
    installed = load_plugins()
    plugins = Plugins(
        sources=installed.sources,
        connectors={**installed.connectors, "gcal": GcalConnector},
    )
    settings = load_settings(
        tmp_path / "switchboard.yaml",
        environ={"SWITCHBOARD_SECRET_GITHUB": "x"},
        plugins=plugins,
    )

    # When the rules are checked and their tests run as `switchboard rules test` does.
    result = load_rules(settings, plugins, TemplateEngine())
    sources = {name: cls() for name, cls in plugins.sources.items()}
    cases = run_rule_tests(
        result.ruleset,
        result.documents,
        sources=sources,
        clock=FakeClock(),
        categories=train_categories(settings.categories),
    )

    # Then every job-review case passes (and the other shipped files still do).
    mine = [c for c in cases if c.file.endswith("job-review.yaml")]
    assert len(mine) == 7
    assert [(c.name, c.diff) for c in cases if not c.passed] == []
    assert not [w for w in result.warnings if "job-review" in str(w)]


# --- service accounts ----------------------------------------------------------------------


def _as_service_account(subject: str | None = None, key: str | None = None) -> DeliveryContext:
    options: dict[str, Any] = {
        "calendar_id": CALENDAR_ID,
        "service_account": Secret(key or service_account_key(f"{BASE}/token"), origin="file:sa"),
        "api_url": f"{BASE}/calendar/v3",
    }
    if subject:
        options["subject"] = subject
    destination = Destination(name="reviews", connector="gcal", options=options)
    return dataclasses.replace(_ctx(), destination=destination)


def test_a_service_account_acting_as_a_workspace_user_creates_the_event(gcal: Harness) -> None:
    gcal.fake.delegated = {"ada@example.com"}

    result = gcal.send("create", REVIEW, _as_service_account("ada@example.com"))

    assert result.outcome == "ok", result.reason
    # The JWT bearer grant, signed with the account's key (checked by the fake).
    [claims] = gcal.fake.assertions
    assert claims["iss"] == SERVICE_ACCOUNT
    assert claims["sub"] == "ada@example.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/calendar.events"
    assert claims["aud"] == f"{BASE}/token"
    assert (claims["iat"], claims["exp"]) == (int(NOW.timestamp()), int(NOW.timestamp()) + 3600)
    [insert] = gcal.fake.api_requests("POST")
    assert insert.authorization == f"Bearer {gcal.fake.issued[0]}"


def test_a_service_account_token_is_cached_across_sends(gcal: Harness) -> None:
    for _ in range(3):
        assert gcal.send("create", REVIEW, _as_service_account()).outcome == "ok"

    assert len(gcal.fake.assertions) == 1
    assert "sub" not in gcal.fake.assertions[0]  # no subject: the account's own calendars


def test_a_subject_without_delegation_fails_saying_what_to_allow(gcal: Harness) -> None:
    result = gcal.send("create", REVIEW, _as_service_account("grace@example.com"))

    assert result.outcome == "fail"
    assert "401 unauthorized_client" in result.reason
    assert f"allow {SERVICE_ACCOUNT}'s client id domain-wide delegation" in result.reason
    assert "PRIVATE KEY" not in result.reason
    assert gcal.fake.api_requests() == []


@pytest.mark.parametrize(
    "key",
    [
        "not json",
        json.dumps({"type": "authorized_user", "client_id": "x", "refresh_token": "y"}),
        json.dumps({"type": "service_account", "client_email": SERVICE_ACCOUNT}),
    ],
)
def test_a_service_account_that_is_not_a_key_fails_without_quoting_it(
    gcal: Harness, key: str
) -> None:
    result = gcal.send("create", REVIEW, _as_service_account(key=key))

    assert result.outcome == "fail"
    assert "service_account is not a Google service account key" in result.reason
    assert "refresh_token" not in result.reason
    assert gcal.fake.seen == []


def test_a_service_account_destination_validates_and_may_not_mix_grants() -> None:
    schema = GcalConnector.destination_schema
    service = {"service_account": {"file": "sa.json"}, "subject": "ada@example.com"}
    jsonschema.validate(service, schema)
    mixed = {**service, "client_id": CLIENT_ID, "refresh_token": {"env": "R"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(mixed, schema)
