"""The seed plan's Job Review flow end to end: a Notion page becomes one Google Calendar
invite; rescheduling moves it; replaying the delivery never invites twice.

Real parts: the embedded hub and worker, rules/job-review.yaml as shipped, a fake Notion
API serving a page in the real page shape, and a stateful fake Calendar API.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from hub.api.operations import replay_now
from hub.app import create_app
from hub.config import load_settings
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from tests.fakes.gcal import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, FakeGoogleCalendar
from tests.fakes.notion import FAKE_TOKEN, FakeNotion, notion_fixture
from tests.servers import serve_in_thread
from tests.support import GITHUB_SECRET, REPO, wait_until, write_config

VERIFY = "secret_job_review_verification_not_real"
JOB_REVIEWS_DB = "3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b"
PAGE = "153104cd-477e-8050-9a1b-2c3d4e5f6a7b"


def job_review_page(date: str) -> dict[str, Any]:
    """A page of the "Job Reviews" database, in the real page shape (the launch-post
    fixture's property values, named as the job-review rules expect)."""
    page = copy.deepcopy(notion_fixture("api", "pages", "launch-post.before.json"))
    props = page["properties"]
    candidate = copy.deepcopy(props["Name"])
    candidate.update(id="cAnd", type="rich_text", rich_text=candidate.pop("title"))
    page["id"] = PAGE
    page["parent"] = {"type": "database_id", "database_id": JOB_REVIEWS_DB}
    page["properties"] = {
        "Name": props["Name"],
        "Candidate": candidate,
        "Reviewers": props["Assignee"],
        "Date": {**props["Due"], "date": {"start": date, "end": None, "time_zone": None}},
        "Status": props["Status"],
    }
    return page


@pytest.fixture
def fakes() -> Iterator[tuple[FakeNotion, str, FakeGoogleCalendar, str]]:
    notion, google = FakeNotion(), FakeGoogleCalendar()
    with serve_in_thread(notion.app()) as notion_url, serve_in_thread(google.app()) as gcal_url:
        yield notion, notion_url, google, gcal_url


def _hub(tmp_path: Path, notion_url: str, gcal_url: str) -> Runtime:
    destination = f"""
  job-reviews:
    connector: gcal
    calendar_id: primary
    client_id: "{CLIENT_ID}"
    client_secret: {{env: TEST_GCAL_CLIENT_SECRET}}
    refresh_token: {{env: TEST_GCAL_REFRESH_TOKEN}}
    timezone: Europe/Berlin
    api_url: "{gcal_url}/calendar/v3"
    token_url: "{gcal_url}/token\""""
    source = f"""  notion:
    secret: {{env: TEST_NOTION_VERIFY}}
    api_token: {{env: TEST_NOTION_TOKEN}}
    api_url: "{notion_url}"
    coalesce_window: 0.2s
    databases: {{"{JOB_REVIEWS_DB}": {{kind: job_review}}}}"""
    rules = (REPO / "rules" / "job-review.yaml").read_text(encoding="utf-8")
    config = write_config(tmp_path, rules=rules, tasks_policy=destination, extra_sources=source)
    environ = {
        "SWITCHBOARD_SECRET_GITHUB": GITHUB_SECRET,
        "TEST_GCAL_CLIENT_SECRET": CLIENT_SECRET,
        "TEST_GCAL_REFRESH_TOKEN": REFRESH_TOKEN,
        "TEST_NOTION_VERIFY": VERIFY,
        "TEST_NOTION_TOKEN": FAKE_TOKEN,
    }
    plugins = load_plugins()
    return build_runtime(load_settings(config, environ=environ, plugins=plugins), plugins)


def _webhook(kind: str) -> tuple[bytes, dict[str, str]]:
    payload = copy.deepcopy(notion_fixture("webhooks", "page.properties_updated.json"))
    payload["id"] = str(uuid.uuid4())
    payload["type"] = kind
    payload["entity"]["id"] = PAGE
    payload["data"]["parent"] = {"id": JOB_REVIEWS_DB, "type": "database"}
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(VERIFY.encode(), body, hashlib.sha256).hexdigest()
    return body, {"X-Notion-Signature": signature, "Content-Type": "application/json"}


def _gcal_done(runtime: Runtime, count: int) -> bool:
    rows = [r for r in runtime.store.list_deliveries() if r.connector == "gcal"]
    return sum(1 for r in rows if r.status == "delivered") >= count


def test_a_job_review_page_is_one_invite_that_follows_the_page(
    tmp_path: Path, fakes: tuple[FakeNotion, str, FakeGoogleCalendar, str]
) -> None:
    notion, notion_url, google, gcal_url = fakes
    notion.put_page(job_review_page("2026-12-02T14:00:00+01:00"))
    runtime = _hub(tmp_path, notion_url, gcal_url)
    with TestClient(create_app(runtime, run_worker=True)) as client:
        body, headers = _webhook("page.created")
        assert client.post("/hooks/notion", content=body, headers=headers).status_code == 200
        wait_until(lambda: _gcal_done(runtime, 1), 15, "the invite was created")
        # The review moves: one webhook, the same invite is updated.
        notion.put_page(job_review_page("2026-12-03T10:30:00+01:00"))
        body, headers = _webhook("page.properties_updated")
        assert client.post("/hooks/notion", content=body, headers=headers).status_code == 200
        wait_until(lambda: _gcal_done(runtime, 2), 15, "the invite was moved")
        # An admin replays the first delivery: an update, never a second invite.
        first = next(
            r
            for r in runtime.store.list_deliveries()
            if r.connector == "gcal" and r.rule_id == "job-review-scheduled"
        )
        replay_now(runtime, [first.id], force=True)
        wait_until(
            lambda: len([s for s in google.api_requests() if s.method in ("POST", "PATCH")]) >= 3,
            15,
            "the replay reached Google",
        )
    runtime.close()

    assert len(google.events) == 1  # one invite, whatever happened
    [invite] = google.events.values()
    assert invite["summary"] == "Job review: Write launch post"
    assert [a["email"] for a in invite["attendees"]] == ["grace@example.com"]
    assert invite["hangoutLink"]
    calls = [(s.method, s.status) for s in google.api_requests() if s.method != "GET"]
    assert calls[:2] == [("POST", 200), ("PATCH", 200)]  # created, then moved
    assert calls[2] in {("POST", 409), ("PATCH", 200)}  # the replay: never a new event
