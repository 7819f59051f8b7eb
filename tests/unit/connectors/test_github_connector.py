"""GitHubConnector against a respx fake of the REST API, with GitHub's real error bodies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import respx

from connectors.base import ConnectorEnv, Destination, SendResult
from connectors.github import COMMENT_LIMIT, GitHubConnector
from hub.secrets import Secret
from tests.connector_support import delivery_context, rendered_action

FIXTURES = Path(__file__).resolve().parents[4] / "shared" / "fixtures" / "github"
TOKEN = "github_pat_fixture_token_not_real"
NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
RESET = int(NOW.timestamp()) + 1800
API = "https://api.github.com"
REPO = "Codertocat/Hello-World"
SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
DOCS = "https://docs.github.com/rest"


def _fixture(*parts: str) -> Any:
    path = FIXTURES.joinpath(*parts)
    if not path.is_file():
        pytest.fail(f"GitHub fixture {path} is missing: shared/ must sit beside the repository")
    return json.loads(path.read_text(encoding="utf-8"))


def _comment() -> dict[str, Any]:
    """The REST issue-comment object (the webhook payload carries the same shape)."""
    comment: dict[str, Any] = _fixture("issue_comment", "created.json")["comment"]
    return comment


def _issue(state: str = "closed") -> dict[str, Any]:
    issue: dict[str, Any] = _fixture("issues", "opened.json")["issue"]
    return {**issue, "state": state, "state_reason": "completed"}


def _labels() -> list[dict[str, Any]]:
    return [_fixture("issues", "labeled.json")["label"]]


def _status_object() -> dict[str, Any]:
    status = _fixture("status", "default.json")
    keys = ("id", "state", "description", "target_url", "context", "created_at", "updated_at")
    return {"url": f"{API}/repos/{REPO}/statuses/{SHA}", **{k: status[k] for k in keys}}


def _error(message: str, doc: str = DOCS, **extra: Any) -> dict[str, Any]:
    return {"message": message, "documentation_url": doc, **extra}


def _limits(remaining: int, *, reset: int = RESET) -> dict[str, str]:
    return {
        "x-ratelimit-limit": "5000",
        "x-ratelimit-remaining": str(remaining),
        "x-ratelimit-used": str(5000 - remaining),
        "x-ratelimit-reset": str(reset),
        "x-ratelimit-resource": "core",
    }


def _destination(**options: Any) -> Destination:
    return Destination(
        name="github-bot",
        connector="github",
        options={"token": Secret(TOKEN, origin="env:GITHUB_TOKEN"), **options},
    )


@dataclass
class Sent:
    result: SendResult
    requests: list[httpx.Request] = field(default_factory=list)

    @property
    def request(self) -> httpx.Request:
        assert len(self.requests) == 1
        return self.requests[0]

    @property
    def body(self) -> Any:
        return json.loads(self.request.content)


def _send(
    router: respx.Router,
    operation: str | None = "comment",
    params: Mapping[str, Any] | None = None,
    *,
    destination: Destination | None = None,
) -> Sent:
    destination = destination if destination is not None else _destination()
    defaults = {"repo": REPO, "issue": 1, "body": "Done in Notion"}
    action = rendered_action(
        "github",
        destination.name,
        params if params is not None else defaults,
        operation=operation,
        destination_param="account",
    )
    ctx = delivery_context(destination, now=NOW, rule_id="task-done")

    async def run() -> SendResult:
        async with httpx.AsyncClient(transport=httpx.MockTransport(router.async_handler)) as http:
            connector = GitHubConnector(ConnectorEnv(http=http, base_dir=Path(".")))
            return await connector.send(action, ctx)

    result = asyncio.run(run())
    return Sent(result, [call.request for call in router.calls])


def _api(status: int = 201, **kwargs: Any) -> respx.Router:
    router = respx.Router(assert_all_called=False)
    router.route(host="api.github.com").respond(status, **kwargs)
    return router


# --- what the answer means ---------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    outcome: str = "fail"
    after: float | None = None
    reason_has: str = ""


SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
    "again. If you reach out to GitHub Support for help, please include the request ID "
    "C0DE:1234:5678:9ABC:DEF0."
)
PRIMARY = (
    "API rate limit exceeded for user ID 21031067. If you reach out to GitHub Support for "
    "help, please include the request ID C0DE:1234:5678:9ABC:DEF1 and timestamp "
    "2026-11-21 10:00:00 UTC."
)
SECONDARY_DOCS = f"{DOCS}/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"

CASES: dict[str, Case] = {
    "201-is-ok-with-the-comment-id": Case(201, _comment(), _limits(4999), "ok"),
    "401-bad-credentials-fails": Case(
        401,
        _error("Bad credentials", status="401"),
        reason_has="rejected the token (401 Bad credentials)",
    ),
    "403-with-remaining-0-retries-at-the-reset": Case(
        403, _error(PRIMARY, status="403"), _limits(0), "retry", after=1800.0
    ),
    "429-with-remaining-0-retries-at-the-reset": Case(
        429, _error(PRIMARY, status="429"), _limits(0), "retry", after=1800.0
    ),
    "403-secondary-with-retry-after-retries-after-it": Case(
        403,
        _error(SECONDARY, SECONDARY_DOCS, status="403"),
        {**_limits(4990), "retry-after": "42"},
        "retry",
        after=42.0,
    ),
    "429-secondary-with-retry-after-retries-after-it": Case(
        429, _error(SECONDARY, SECONDARY_DOCS), {"retry-after": "5"}, "retry", after=5.0
    ),
    "403-secondary-without-headers-waits-a-minute": Case(
        403, _error(SECONDARY, SECONDARY_DOCS, status="403"), _limits(4990), "retry", after=60.0
    ),
    "403-no-access-fails-naming-the-token": Case(
        403,
        _error("Resource not accessible by personal access token", status="403"),
        _limits(4990),
        reason_has="Resource not accessible by personal access token",
    ),
    "404-fails-with-githubs-message": Case(
        404, _error("Not Found", status="404"), _limits(4990), reason_has="404 Not Found"
    ),
    "410-issues-disabled-fails": Case(
        410,
        _error("Issues are disabled for this repo", status="410"),
        reason_has="Issues are disabled",
    ),
    "422-fails-with-the-validation-errors": Case(
        422,
        _error(
            "Validation Failed",
            status="422",
            errors=[
                {
                    "resource": "IssueComment",
                    "code": "custom",
                    "field": "body",
                    "message": "body is too long (maximum is 65536 characters)",
                }
            ],
        ),
        reason_has="Validation Failed: body is too long (maximum is 65536 characters)",
    ),
    "301-moved-repository-fails-without-following": Case(
        301,
        _error("Moved Permanently", url=f"{API}/repositories/1296269/issues/1/comments"),
        {"location": f"{API}/repositories/1296269/issues/1/comments"},
        reason_has="moved",
    ),
    "500-retries": Case(500, _error("Server Error"), outcome="retry"),
    "502-retries": Case(502, "<html>Unicorn! 502</html>", outcome="retry"),
    "503-with-retry-after-retries-after-it": Case(
        503, _error("Service Unavailable"), {"retry-after": "30"}, "retry", after=30.0
    ),
}


def _router_for(case: Case) -> respx.Router:
    if isinstance(case.body, str):
        return _api(case.status, text=case.body, headers=dict(case.headers))
    return _api(case.status, json=case.body, headers=dict(case.headers))


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_github_answer_maps_to_ok_retry_or_fail(case: Case) -> None:
    sent = _send(_router_for(case))

    assert sent.result.outcome == case.outcome
    assert sent.result.after == case.after
    assert sent.result.status_code == case.status
    assert case.reason_has in sent.result.reason
    assert len(sent.requests) == 1


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_token_never_appears_in_a_result(case: Case) -> None:
    sent = _send(_router_for(case))

    assert TOKEN not in sent.result.reason
    assert TOKEN not in repr(sent.result)


@pytest.mark.parametrize(
    ("exc_type", "outcome"),
    [
        (httpx.ReadTimeout, "retry"),
        (httpx.ConnectError, "retry"),
        (httpx.RemoteProtocolError, "retry"),
        (httpx.UnsupportedProtocol, "fail"),
    ],
)
def test_transport_errors(exc_type: type[httpx.TransportError], outcome: str) -> None:
    router = respx.Router(assert_all_called=False)
    router.route(host="api.github.com").mock(side_effect=exc_type)

    sent = _send(router)

    assert sent.result.outcome == outcome


def test_spending_the_last_request_of_the_hour_pauses_the_destination_until_reset() -> None:
    sent = _send(_api(201, json=_comment(), headers=_limits(0)))

    assert sent.result.outcome == "ok"
    assert sent.result.pause_s == 1800.0


def test_requests_left_in_the_hour_do_not_pause() -> None:
    assert _send(_api(201, json=_comment(), headers=_limits(1))).result.pause_s is None


# --- the requests ------------------------------------------------------------------------


def test_comment_posts_the_body_to_the_issue_with_githubs_headers() -> None:
    sent = _send(_api(201, json=_comment()))

    request = sent.request
    assert request.method == "POST"
    assert str(request.url) == f"{API}/repos/{REPO}/issues/1/comments"
    assert sent.body == {"body": "Done in Notion"}
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["accept"] == "application/vnd.github+json"
    assert request.headers["x-github-api-version"] == "2022-11-28"
    assert request.headers["user-agent"]
    assert sent.result.ref == "492700400"


def test_comment_over_the_limit_is_cut_with_a_visible_marker() -> None:
    params = {"repo": REPO, "issue": 1, "body": "x" * (COMMENT_LIMIT + 10)}

    sent = _send(_api(201, json=_comment()), "comment", params)

    sent_body = sent.body["body"]
    assert len(sent_body) == COMMENT_LIMIT
    assert sent_body.endswith("(truncated by Switchboard)")


def test_comment_without_a_body_fails_without_a_request() -> None:
    sent = _send(_api(), "comment", {"repo": REPO, "issue": 1})

    assert sent.result.outcome == "fail"
    assert "body" in sent.result.reason
    assert sent.requests == []


def test_label_adds_the_labels_to_the_issue() -> None:
    sent = _send(_api(200, json=_labels()), "label", {"repo": REPO, "issue": "1", "labels": "bug"})

    assert sent.request.method == "POST"
    assert sent.request.url.path == f"/repos/{REPO}/issues/1/labels"
    assert sent.body == {"labels": ["bug"]}
    assert sent.result.outcome == "ok"


def test_unlabel_removes_each_label_with_its_name_escaped() -> None:
    router = respx.Router(assert_all_called=False)
    router.route(method="DELETE", host="api.github.com").respond(200, json=[])
    params = {"repo": REPO, "issue": 1, "labels": ["in progress", "area/api"]}

    sent = _send(router, "unlabel", params)

    assert sent.result.outcome == "ok"
    assert [r.url.raw_path.decode() for r in sent.requests] == [
        f"/repos/{REPO}/issues/1/labels/in%20progress",
        f"/repos/{REPO}/issues/1/labels/area%2Fapi",
    ]


def test_unlabel_of_a_label_the_issue_does_not_have_is_ok() -> None:
    body = _error("Label does not exist", f"{DOCS}/issues/labels#remove-a-label-from-an-issue")

    sent = _send(_api(404, json=body), "unlabel", {"repo": REPO, "issue": 1, "labels": ["x"]})

    assert sent.result.outcome == "ok"


def test_unlabel_on_a_missing_issue_fails() -> None:
    sent = _send(
        _api(404, json=_error("Not Found")), "unlabel", {"repo": REPO, "issue": 99, "labels": "x"}
    )

    assert sent.result.outcome == "fail"
    assert "Not Found" in sent.result.reason


def test_unlabel_stops_at_the_first_label_that_is_rate_limited() -> None:
    router = respx.Router(assert_all_called=False)
    router.route(method="DELETE", host="api.github.com").respond(
        403, json=_error(PRIMARY), headers=_limits(0)
    )

    sent = _send(router, "unlabel", {"repo": REPO, "issue": 1, "labels": ["a", "b"]})

    assert sent.result.outcome == "retry"
    assert len(sent.requests) == 1


def test_close_patches_the_issue_closed_as_completed_and_refs_its_number() -> None:
    sent = _send(_api(200, json=_issue()), "close", {"repo": REPO, "issue": 1})

    assert sent.request.method == "PATCH"
    assert sent.request.url.path == f"/repos/{REPO}/issues/1"
    assert sent.body == {"state": "closed", "state_reason": "completed"}
    assert sent.result.ref == "1"


def test_close_accepts_an_issue_url_from_another_tool() -> None:
    # A Notion task stores the linked issue as its URL; the repo comes from it.
    params = {"issue": "https://github.com/Codertocat/Hello-World/issues/1", "state_reason": ""}

    sent = _send(_api(200, json=_issue()), "close", params)

    assert sent.request.url.path == f"/repos/{REPO}/issues/1"


def test_close_as_not_planned() -> None:
    params = {"repo": REPO, "issue": "#1", "state_reason": "not_planned"}

    sent = _send(_api(200, json=_issue()), "close", params)

    assert sent.body["state_reason"] == "not_planned"


def test_status_posts_to_the_commit_with_a_default_context() -> None:
    params = {"repo": REPO, "sha": SHA, "state": "success", "target_url": "https://notion.so/x"}

    sent = _send(_api(201, json=_status_object()), "status", params)

    assert sent.request.url.path == f"/repos/{REPO}/statuses/{SHA}"
    assert sent.body == {
        "state": "success",
        "context": "switchboard",
        "target_url": "https://notion.so/x",
    }
    assert sent.result.ref == "6805126730"


def test_status_description_is_cut_to_140_characters() -> None:
    params = {"repo": REPO, "sha": SHA, "state": "pending", "description": "d" * 200}

    sent = _send(_api(201, json=_status_object()), "status", params)

    assert sent.body["description"] == "d" * 139 + "…"


def test_enterprise_api_url_is_used() -> None:
    router = respx.Router(assert_all_called=False)
    router.route(host="github.example.com").respond(201, json=_comment())
    destination = _destination(api_url="https://github.example.com/api/v3/")

    sent = _send(router, destination=destination)

    assert str(sent.request.url) == (
        f"https://github.example.com/api/v3/repos/{REPO}/issues/1/comments"
    )


@pytest.mark.parametrize(
    ("operation", "params", "reason_has"),
    [
        pytest.param(None, {"repo": REPO, "issue": 1}, "github.comment", id="no-operation"),
        pytest.param("reopen", {"repo": REPO, "issue": 1}, "github.close", id="unknown-operation"),
        pytest.param("close", {"issue": 1}, "repo", id="no-repo"),
        pytest.param("close", {"repo": REPO}, "issue", id="no-issue"),
        pytest.param("close", {"repo": "Hello-World", "issue": 1}, "owner/name", id="bad-repo"),
        pytest.param("close", {"repo": "../x", "issue": 1}, "owner/name", id="dot-dot-repo"),
        pytest.param("close", {"repo": REPO, "issue": "one"}, "issue", id="bad-issue"),
        pytest.param("close", {"repo": REPO, "issue": 0}, "issue", id="zero-issue"),
        pytest.param(
            "close",
            {"repo": "acme/other", "issue": "https://github.com/Codertocat/Hello-World/issues/1"},
            "not in repo",
            id="url-in-another-repo",
        ),
        pytest.param(
            "close", {"repo": REPO, "issue": 1, "state_reason": "done"}, "state_reason", id="reason"
        ),
        pytest.param("label", {"repo": REPO, "issue": 1, "labels": []}, "labels", id="no-labels"),
        pytest.param("status", {"repo": REPO, "sha": "abc", "state": "success"}, "sha", id="sha"),
        pytest.param("status", {"repo": REPO, "sha": SHA, "state": "green"}, "state", id="state"),
    ],
)
def test_unusable_params_fail_without_a_request(
    operation: str | None, params: dict[str, Any], reason_has: str
) -> None:
    sent = _send(_api(), operation, params)

    assert sent.result.outcome == "fail"
    assert reason_has in sent.result.reason
    assert sent.requests == []


def test_destination_without_a_token_fails_without_a_request() -> None:
    destination = Destination(name="github-bot", connector="github", options={})

    sent = _send(_api(), destination=destination)

    assert sent.result.outcome == "fail"
    assert "token" in sent.result.reason
    assert sent.requests == []


# --- schemas -----------------------------------------------------------------------------


def test_templated_issue_numbers_pass_load_time_validation() -> None:
    params = {"account": "github-bot", "repo": "{{ x }}", "issue": "{{ event.data.fields.n }}"}

    jsonschema.Draft202012Validator(GitHubConnector.params_schema).validate(params)
