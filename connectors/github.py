"""GitHub connector: comment on, label, unlabel and close issues and PRs; set commit statuses.

REST API version 2022-11-28: https://docs.github.com/en/rest?apiVersion=2022-11-28
Endpoints: issues/comments#create-an-issue-comment, issues/labels (add, remove),
issues/issues#update-an-issue, commits/statuses#create-a-commit-status.
Rate limits: https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
(403/429; `retry-after` first, else `x-ratelimit-remaining: 0` until `x-ratelimit-reset`,
else at least a minute for a secondary limit).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from connectors.base import (
    SECRET_REF_SCHEMA,
    Connector,
    ConnectorEnv,
    DeliveryContext,
    RenderedAction,
    SendResult,
    classify_status,
    fail,
    ok,
    parse_retry_after,
    response_object,
    retry,
    secret_option,
)

log = logging.getLogger(__name__)

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
OPERATIONS = ("comment", "label", "unlabel", "close", "status")
COMMENT_LIMIT = 65536  # "body is too long (maximum is 65536 characters)"
DESCRIPTION_LIMIT = 140  # commit status description
TRUNCATED = "\n\n… (truncated by Switchboard)"
STATES = ("error", "failure", "pending", "success")
STATE_REASONS = ("completed", "not_planned")
#: GitHub asks for no more than 80 content-creating requests a minute and 500 an hour,
#: and at least a second between writes; these are per destination (one token).
RATE_LIMITS: tuple[tuple[int, float], ...] = ((1, 1.0), (80, 60.0), (500, 3600.0))
#: With neither header, a secondary limit means "wait at least one minute".
SECONDARY_LIMIT_WAIT_S = 60.0

_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_ISSUE_URL = re.compile(r"^https?://[^/]+/([^/]+/[^/]+)/(?:issues|pull)/(\d+)/?(?:[?#].*)?$")
_SHA = re.compile(r"^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")

params_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["account"],
    "properties": {
        "account": {
            "type": "string",
            "description": "Name of a github destination (a token) in switchboard.yaml.",
            "examples": ["github-bot"],
        },
        "repo": {
            "type": "string",
            "description": "owner/name; optional when `issue` is an issue or PR URL.",
            "examples": ["{{ event.data.fields.repository }}", "acme/launch"],
        },
        "issue": {
            "type": ["integer", "string"],
            "description": "comment/label/unlabel/close: issue or PR number, or its URL.",
            "examples": [
                "{{ event.data.fields.number }}",
                "https://github.com/acme/launch/issues/12",
            ],
        },
        "body": {
            "type": "string",
            "description": "comment: Markdown text (65536 chars; longer is cut with a marker).",
            "examples": ["Closed from Notion: {{ event.data.entity.url }}"],
        },
        "labels": {
            "type": ["array", "string"],
            "items": {"type": "string"},
            "description": "label/unlabel: label names (one name as a string is fine).",
            "examples": [["needs-triage"], "done"],
        },
        "state_reason": {
            "type": "string",
            "description": "close: completed (default) or not_planned.",
            "examples": ["completed"],
        },
        "sha": {
            "type": "string",
            "description": "status: full commit SHA.",
            "examples": ["{{ event.data.fields.head_sha }}"],
        },
        "state": {
            "type": "string",
            "description": "status: error, failure, pending or success.",
            "examples": ["success"],
        },
        "context": {
            "type": "string",
            "description": "status: the check's name (default switchboard).",
            "examples": ["notion/task"],
        },
        "description": {
            "type": "string",
            "description": "status: short text (140 chars; longer is cut with …).",
            "examples": ["Task is Done in Notion"],
        },
        "target_url": {
            "type": "string",
            "description": "status: link shown with the status.",
            "examples": ["{{ event.data.entity.url }}"],
        },
    },
}

destination_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["token"],
    "properties": {
        "token": {
            **SECRET_REF_SCHEMA,
            "description": (
                "A fine-grained or classic token (or app installation token) with Issues "
                "and Commit statuses write access to the repositories."
            ),
            "examples": [{"env": "GITHUB_TOKEN"}],
        },
        "api_url": {
            "type": "string",
            "description": "API root; https://HOST/api/v3 for GitHub Enterprise Server.",
            "examples": ["https://api.github.com", "https://github.example.com/api/v3"],
        },
    },
}


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One REST request an operation needs."""

    method: str
    path: str
    json: Mapping[str, Any] | None = None
    #: A 404 with this message means the work is already done (e.g. label not on the issue).
    done_if_missing: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """The requests for one action, and what to call the target in messages."""

    calls: tuple[ApiCall, ...]
    what: str


class GitHubConnector(Connector):
    """Runs `github.<operation>` actions with a token; the engine paces them per destination."""

    name: ClassVar[str] = "github"
    params_schema: ClassVar[dict[str, Any]] = params_schema
    destination_schema: ClassVar[dict[str, Any]] = destination_schema
    destination_param: ClassVar[str | None] = "account"
    rate_limits: ClassVar[tuple[tuple[int, float], ...]] = RATE_LIMITS
    operations: ClassVar[tuple[str, ...]] = OPERATIONS

    def __init__(self, env: ConnectorEnv) -> None:
        self._http = env.http

    async def send(self, action: RenderedAction, ctx: DeliveryContext) -> SendResult:
        dest = ctx.destination
        if dest is None:
            return fail("github action has no destination ('account')")
        token = secret_option(dest, "token")
        if token is None:
            return fail(f"github destination '{dest.name}' has no token")
        try:
            plan = plan_action(action.operation, action.params)
        except ValueError as exc:
            return fail(f"github.{action.operation or '?'}: {exc}")
        api_url = str(dest.options.get("api_url") or API_URL).rstrip("/")
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }
        result = ok()
        for call in plan.calls:
            try:
                response = await self._http.request(
                    call.method,
                    api_url + call.path,
                    json=call.json,
                    headers=headers,
                    follow_redirects=False,
                )
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                return fail(f"github api_url {api_url!r} is not usable: {type(exc).__name__}")
            except httpx.TimeoutException:
                return retry(None, f"GitHub did not answer in time ({plan.what})")
            except httpx.TransportError as exc:
                return retry(None, f"could not reach {api_url}: {type(exc).__name__}")
            result = classify_github(response, ctx, what=plan.what, call=call)
            if result.outcome != "ok":
                return result
        return result


def plan_action(operation: str | None, params: Mapping[str, Any]) -> Plan:
    """The API calls for `github.<operation>`; raises ValueError naming what is missing."""
    if operation not in OPERATIONS:
        given = f"'github.{operation}'" if operation else "'github'"
        raise ValueError(
            f"{given} names no operation; use one of "
            + ", ".join(f"github.{op}" for op in OPERATIONS)
        )
    if operation == "status":
        return _status(params)
    repo, number = _issue(params)
    base = f"/repos/{repo}/issues/{number}"
    what = f"{repo}#{number}"
    if operation == "comment":
        body = params.get("body")
        if not isinstance(body, str) or not body.strip():
            raise ValueError("`body` is required for a comment")
        return Plan(
            (ApiCall("POST", base + "/comments", {"body": _cut_comment(body, what)}),), what
        )
    if operation == "close":
        reason = str(params.get("state_reason") or "completed")
        if reason not in STATE_REASONS:
            raise ValueError(f"state_reason {reason!r} is not one of {', '.join(STATE_REASONS)}")
        return Plan((ApiCall("PATCH", base, {"state": "closed", "state_reason": reason}),), what)
    labels = _labels(params)
    if operation == "label":
        return Plan((ApiCall("POST", base + "/labels", {"labels": labels}),), what)
    return Plan(
        tuple(
            ApiCall("DELETE", f"{base}/labels/{quote(name, safe='')}", None, "Label does not exist")
            for name in labels
        ),
        what,
    )


def _issue(params: Mapping[str, Any]) -> tuple[str, int]:
    raw = params.get("issue")
    repo = params.get("repo")
    if raw is None or str(raw).strip() == "":
        raise ValueError("`issue` (a number or an issue URL) is required")
    text = str(raw).strip()
    if found := _ISSUE_URL.match(text):
        if repo and str(repo).strip().lower() != found.group(1).lower():
            raise ValueError(f"issue URL {text} is not in repo {repo}")
        repo, text = found.group(1), found.group(2)
    number = text.removeprefix("#")
    if not number.isdigit() or int(number) < 1:
        raise ValueError(f"issue {raw!r} is not an issue number or URL")
    return _repo(repo), int(number)


def _repo(value: Any) -> str:
    text = str(value or "").strip()
    if not text:
        raise ValueError("`repo` (owner/name) is required unless `issue` is a URL")
    if not _REPO.match(text) or any(part in (".", "..") for part in text.split("/")):
        raise ValueError(f"repo {text!r} is not owner/name")
    return text


def _labels(params: Mapping[str, Any]) -> list[str]:
    raw = params.get("labels")
    items = [raw] if isinstance(raw, str) else list(raw or [])
    labels = [str(item).strip() for item in items if str(item).strip()]
    if not labels:
        raise ValueError("`labels` is required and must name at least one label")
    return labels


def _status(params: Mapping[str, Any]) -> Plan:
    repo = _repo(params.get("repo"))
    sha = str(params.get("sha") or "").strip()
    if not _SHA.match(sha):
        raise ValueError(f"sha {sha!r} is not a full commit SHA")
    state = str(params.get("state") or "").strip()
    if state not in STATES:
        raise ValueError(f"state {state!r} is not one of {', '.join(STATES)}")
    body: dict[str, Any] = {"state": state, "context": str(params.get("context") or "switchboard")}
    if description := params.get("description"):
        text = str(description)
        if len(text) > DESCRIPTION_LIMIT:
            text = text[: DESCRIPTION_LIMIT - 1] + "…"
        body["description"] = text
    if target_url := params.get("target_url"):
        body["target_url"] = str(target_url)
    return Plan((ApiCall("POST", f"/repos/{repo}/statuses/{sha}", body),), f"{repo}@{sha[:7]}")


def _cut_comment(body: str, what: str) -> str:
    if len(body) <= COMMENT_LIMIT:
        return body
    log.info("github comment on %s cut from %d to %d characters", what, len(body), COMMENT_LIMIT)
    return body[: COMMENT_LIMIT - len(TRUNCATED)] + TRUNCATED


def classify_github(
    response: httpx.Response, ctx: DeliveryContext, *, what: str, call: ApiCall
) -> SendResult:
    """Map GitHub's answer to ok / retry(after) / fail; rate limits before permissions."""
    status = response.status_code
    data = response_object(response)
    message = str(data.get("message") or response.reason_phrase)[:300]
    if response.is_success:
        return ok(_ref(data), status_code=status, pause_s=_budget_spent_for(response, ctx))
    if status == 404 and call.done_if_missing and message == call.done_if_missing:
        return ok(status_code=status)
    if status in (403, 429) and (wait := _rate_limit_wait(response, ctx, message)) is not None:
        return retry(wait, f"GitHub rate limit for {what}: {message}", status_code=status)
    if status == 401:
        return fail(
            f"GitHub rejected the token ({status} {message}); renew the destination's token",
            status_code=status,
        )
    if status == 403:
        return fail(
            f"GitHub refused {call.method} on {what} (403 {message}); the token lacks access",
            status_code=status,
        )
    if status == 404:
        return fail(
            f"GitHub answered 404 {message} for {what}: it does not exist, or the token "
            "cannot see it",
            status_code=status,
        )
    if status == 422:
        return fail(f"GitHub refused {what} (422 {message}{_errors(data)})", status_code=status)
    if 300 <= status < 400:
        return fail(
            f"GitHub answered {status} for {what}: the repository moved; use its new owner/name",
            status_code=status,
        )
    return classify_status(
        status,
        reason=f"GitHub answered {status} for {what}: {message}",
        after=parse_retry_after(response.headers.get("retry-after"), now=ctx.now),
    )


def _rate_limit_wait(response: httpx.Response, ctx: DeliveryContext, message: str) -> float | None:
    """Seconds to wait when a 403/429 is a rate limit, None when it is not one."""
    after = parse_retry_after(response.headers.get("retry-after"), now=ctx.now)
    if after is not None:
        return after
    if response.headers.get("x-ratelimit-remaining") == "0":
        reset = _reset_in(response, ctx)
        if reset is not None:
            return reset
    if "rate limit" in message.lower() or response.status_code == 429:
        return SECONDARY_LIMIT_WAIT_S
    return None


def _reset_in(response: httpx.Response, ctx: DeliveryContext) -> float | None:
    """Seconds until `x-ratelimit-reset` (UTC epoch seconds)."""
    try:
        reset = float(response.headers["x-ratelimit-reset"])
    except (KeyError, ValueError):
        return None
    return max(0.0, reset - ctx.now.timestamp())


def _budget_spent_for(response: httpx.Response, ctx: DeliveryContext) -> float | None:
    """After the last request of the hour, hold every send to this destination until reset."""
    if response.headers.get("x-ratelimit-remaining") != "0":
        return None
    return _reset_in(response, ctx) or None


def _ref(data: Mapping[str, Any]) -> str | None:
    """Comment or status id, or the issue number for close; None for label lists."""
    if "id" in data and "number" not in data:
        return str(data["id"])
    if "number" in data:
        return str(data["number"])
    return None


def _errors(data: Mapping[str, Any]) -> str:
    """GitHub's `errors` list of a 422, as one line."""
    items = data.get("errors")
    if not isinstance(items, list) or not items:
        return ""
    parts = []
    for item in items[:5]:
        if isinstance(item, Mapping):
            text = item.get("message") or " ".join(
                str(item[k]) for k in ("resource", "field", "code") if item.get(k)
            )
            parts.append(str(text))
        else:
            parts.append(str(item))
    return ": " + "; ".join(parts)
