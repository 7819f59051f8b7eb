"""Toggl connector: start, stop and create time entries (Toggl Track API v9).

Docs: https://engineering.toggl.com/docs/ (time entries: /docs/api/time_entries).
Auth is HTTP Basic with `<api token>:api_token`; a bad token answers 403
(https://engineering.toggl.com/docs/authentication). Limits
(https://support.toggl.com/en/articles/11484112-api-webhook-limits): an hourly quota per
user per organization (Free 30, Starter 240, Premium 600 requests), answered with 402 and
`X-Toggl-Quota-Remaining` / `X-Toggl-Quota-Resets-In` (seconds); and a leaky bucket of
about one request per second, answered with 429.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import httpx

from connectors.base import (
    SECRET_REF_SCHEMA,
    Connector,
    ConnectorEnv,
    DeliveryContext,
    Destination,
    RenderedAction,
    SendResult,
    classify_status,
    fail,
    ok,
    parse_boolean,
    parse_duration,
    parse_retry_after,
    response_json,
    retry,
    secret_option,
)

DEFAULT_API_URL = "https://api.track.toggl.com/api/v9"
CREATED_WITH = "switchboard"
OPERATIONS = ("start", "stop", "create")
#: Project names remembered per connector; the oldest is dropped past this.
PROJECT_CACHE_SIZE = 1024
PROJECTS_PER_PAGE = 200
MAX_PROJECT_PAGES = 10

params_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["workspace"],
    "not": {"required": ["project", "project_id"]},
    "properties": {
        "workspace": {
            "type": "string",
            "description": "Name of a toggl destination in switchboard.yaml.",
            "examples": ["toggl"],
        },
        "description": {
            "type": "string",
            "description": "start, create: what the time entry is for.",
            "examples": ["{{ event.data.entity.title }}"],
        },
        "project": {
            "type": "string",
            "description": "start, create: project name (matched ignoring case, active only).",
            "examples": ["Website relaunch"],
        },
        "project_id": {
            "type": ["integer", "string"],
            "pattern": "^(\\d+|.*\\{\\{.*\\}\\}.*)$",
            "description": "start, create: project id, instead of `project`.",
            "examples": [201234567],
        },
        "tags": {
            "type": ["array", "string"],
            "items": {"type": "string"},
            "description": "start, create: tag names; a string is split on commas.",
            "examples": [["notion"], "{{ event.data.fields.Tags | join(',') }}"],
        },
        "billable": {
            "type": ["boolean", "string"],
            "description": "start, create: billable (paid Toggl plans); 'true' or 'false'.",
            "examples": [True],
        },
        "duration": {
            "type": ["integer", "string"],
            "description": "create (required): seconds, or a duration such as 1h30m or 45m.",
            "examples": ["30m", 5400],
        },
        "start": {
            "type": "string",
            "description": "create: ISO 8601 start with a time zone; default: ends now.",
            "examples": ["2026-11-21T09:00:00Z"],
        },
    },
}

destination_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["workspace_id", "api_token"],
    "properties": {
        "workspace_id": {
            "type": "integer",
            "minimum": 1,
            "description": "Toggl workspace id (in the URL of the workspace settings).",
            "examples": [7654321],
        },
        "api_token": {
            **SECRET_REF_SCHEMA,
            "description": "Personal API token from the Toggl profile page (a secret).",
            "examples": [{"env": "TOGGL_API_TOKEN"}],
        },
        "api_url": {
            "type": "string",
            "description": "API base URL; change only for a test double.",
            "examples": [DEFAULT_API_URL],
        },
    },
}


@dataclass(frozen=True, slots=True)
class Workspace:
    """Where and as whom to call Toggl, read once per send from the destination."""

    name: str
    api_url: str
    workspace_id: int
    token: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.token, "api_token")


class TogglConnector(Connector):
    """`toggl.start`, `toggl.stop` (what start began for the same entity), `toggl.create`."""

    name: ClassVar[str] = "toggl"
    params_schema: ClassVar[dict[str, Any]] = params_schema
    destination_schema: ClassVar[dict[str, Any]] = destination_schema
    destination_param: ClassVar[str | None] = "workspace"
    #: Toggl's advice for its leaky bucket: about one request per second.
    rate_limits: ClassVar[tuple[tuple[int, float], ...]] = ((1, 1.0),)

    def __init__(self, env: ConnectorEnv) -> None:
        self._http = env.http
        self._projects: dict[tuple[str, int, str], int] = {}

    async def send(self, action: RenderedAction, ctx: DeliveryContext) -> SendResult:
        if action.operation not in OPERATIONS:
            named = f"'toggl.{action.operation}'" if action.operation else "'toggl'"
            return fail(f"{named} is not an operation; use toggl.start, toggl.stop or toggl.create")
        try:
            workspace = read_workspace(ctx.destination)
        except ValueError as exc:
            return fail(str(exc))
        try:
            if action.operation == "stop":
                return await self._stop(workspace, ctx)
            return await self._create(workspace, action.operation, action.params, ctx)
        except httpx.TimeoutException:
            return retry(None, f"timed out calling Toggl at {workspace.api_url}")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            return fail(f"toggl destination '{workspace.name}': api_url is not a usable URL")
        except httpx.TransportError as exc:
            return retry(
                None, f"could not reach Toggl at {workspace.api_url}: {type(exc).__name__}"
            )

    async def _create(
        self, ws: Workspace, operation: str, params: Mapping[str, Any], ctx: DeliveryContext
    ) -> SendResult:
        """POST a running entry (start) or a finished one (create)."""
        try:
            if operation == "start":
                start, duration_s = ctx.now, -1  # v9: a negative duration means running
            else:
                if params.get("duration") in (None, ""):
                    raise ValueError("toggl.create needs a duration")
                duration_s = parse_duration_s(params["duration"])
                start = _start_of(params.get("start"), ctx.now, duration_s)
            fields = entry_fields(params)
        except ValueError as exc:
            return fail(f"cannot build the Toggl time entry: {exc}")
        project = await self._project_id(ws, params, ctx)
        if isinstance(project, SendResult):
            return project
        body = {**fields, "workspace_id": ws.workspace_id, "duration": duration_s}
        if project is not None:
            body["project_id"] = project
        body["start"] = iso_utc(start)
        if duration_s < 0:
            body["stop"] = None
        if operation == "start" and ctx.attempt > 1:
            # Toggl takes no idempotency key: an earlier attempt that timed out may have
            # started the entry already, and a second POST would stop it and start another.
            running = await self._running_match(ws, body)
            if running is not None:
                return ok(running, status_code=200)
        url = f"{ws.api_url}/workspaces/{ws.workspace_id}/time_entries"
        response = await self._http.post(url, json=body, auth=ws.auth)
        if response.status_code in (400, 404) and params.get("project"):
            self._forget_project(ws, str(params["project"]))  # renamed or archived since
        return classify_toggl(response, ctx, ws, doing=f"toggl.{operation}")

    async def _stop(self, ws: Workspace, ctx: DeliveryContext) -> SendResult:
        """PATCH …/stop on the entry that toggl.start began for this entity."""
        started = ctx.entity_refs.get("start")
        # A task can reach Done without ever being In progress; that is not an error a
        # replay could fix, so it is ok with a note instead of a dead delivery.
        if started is None:
            return SendResult("ok", reason="nothing to stop: no toggl.start for this entity")
        if ctx.entity_refs.get("stop") == started:
            return SendResult("ok", reason=f"time entry {started} was already stopped")
        url = f"{ws.api_url}/workspaces/{ws.workspace_id}/time_entries/{started}/stop"
        response = await self._http.patch(url, auth=ws.auth)
        if response.status_code == 409:
            # Conflict on stop: someone stopped the entry in Toggl; the goal is met.
            detail = _error_detail(response, ws)
            return SendResult(
                "ok",
                reason=f"time entry {started} was already stopped in Toggl ({detail})",
                ref=started,
                status_code=409,
            )
        result = classify_toggl(response, ctx, ws, doing=f"toggl.stop of entry {started}")
        if result.outcome == "ok" and result.ref is None:
            return SendResult("ok", ref=started, status_code=result.status_code)
        return result

    async def _project_id(
        self, ws: Workspace, params: Mapping[str, Any], ctx: DeliveryContext
    ) -> int | SendResult | None:
        """The project id given, or the id of the named project (listed once, then cached)."""
        if params.get("project_id") not in (None, ""):
            raw = params["project_id"]
            if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
                return raw
            if isinstance(raw, str) and raw.strip().isdigit():
                return int(raw.strip())
            return fail(f"toggl project_id {raw!r} is not a project id (a positive integer)")
        name = str(params.get("project") or "").strip()
        if not name:
            return None
        key = (ws.api_url, ws.workspace_id, name.casefold())
        if key in self._projects:
            return self._projects[key]
        seen: set[int] = set()
        for page in range(1, MAX_PROJECT_PAGES + 1):
            response = await self._http.get(
                f"{ws.api_url}/workspaces/{ws.workspace_id}/projects",
                params={"active": "true", "page": page, "per_page": PROJECTS_PER_PAGE},
                auth=ws.auth,
            )
            if not response.is_success:
                return classify_toggl(response, ctx, ws, doing="listing projects")
            projects = response_json(response)
            if not isinstance(projects, list):
                return retry(None, "Toggl's project list was not a JSON list")
            new = self._remember(ws, projects, seen)
            if key in self._projects:
                return self._projects[key]
            if len(projects) < PROJECTS_PER_PAGE or not new:
                break
        return fail(
            f"Toggl project {name!r} not found among the active projects of workspace "
            f"{ws.workspace_id} (destination '{ws.name}'); check the name or use project_id"
        )

    def _remember(self, ws: Workspace, projects: list[Any], seen: set[int]) -> int:
        """Cache every active project of a page; return how many were new."""
        new = 0
        for project in projects:
            if not isinstance(project, dict) or project.get("active") is False:
                continue
            pid, name = project.get("id"), project.get("name")
            if isinstance(pid, int) and isinstance(name, str) and pid not in seen:
                seen.add(pid)
                new += 1
                if len(self._projects) >= PROJECT_CACHE_SIZE:
                    self._projects.pop(next(iter(self._projects)))
                self._projects[(ws.api_url, ws.workspace_id, name.casefold())] = pid
        return new

    def _forget_project(self, ws: Workspace, name: str) -> None:
        self._projects.pop((ws.api_url, ws.workspace_id, name.strip().casefold()), None)

    async def _running_match(self, ws: Workspace, body: Mapping[str, Any]) -> str | None:
        """Id of the running entry if it is the one this start would create, else None."""
        response = await self._http.get(f"{ws.api_url}/me/time_entries/current", auth=ws.auth)
        entry = response_json(response) if response.is_success else None
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), int):
            return None
        same = (
            entry.get("workspace_id") == ws.workspace_id
            and (entry.get("description") or "") == body.get("description", "")
            and entry.get("project_id") == body.get("project_id")
            and sorted(entry.get("tags") or []) == sorted(body.get("tags") or [])
        )
        return str(entry["id"]) if same else None


def read_workspace(destination: Destination | None) -> Workspace:
    """The destination's settings, or ValueError saying what to fix."""
    if destination is None:
        raise ValueError("toggl action has no destination ('workspace')")
    token = secret_option(destination, "api_token")
    if not token:
        raise ValueError(f"toggl destination '{destination.name}' has no api_token")
    workspace_id = destination.options.get("workspace_id")
    if not isinstance(workspace_id, int) or isinstance(workspace_id, bool) or workspace_id < 1:
        raise ValueError(f"toggl destination '{destination.name}' needs an integer workspace_id")
    api_url = str(destination.options.get("api_url") or DEFAULT_API_URL).rstrip("/")
    return Workspace(name=destination.name, api_url=api_url, workspace_id=workspace_id, token=token)


def entry_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """created_with, description, tags and billable of a time entry body."""
    fields: dict[str, Any] = {"created_with": CREATED_WITH}
    if params.get("description") is not None:
        fields["description"] = str(params["description"])
    tags = params.get("tags")
    if isinstance(tags, str):
        fields["tags"] = [t.strip() for t in tags.split(",") if t.strip()]
    elif isinstance(tags, list):
        fields["tags"] = [str(t) for t in tags if str(t).strip()]
    if "billable" in params:
        fields["billable"] = parse_boolean(params["billable"], blank_is_false=True, name="billable")
    return fields


def parse_duration_s(value: Any) -> int:
    """Whole seconds (at least one) of a duration in the project's grammar (`parse_duration`)."""
    seconds = round(parse_duration(value).total_seconds())
    if seconds < 1:
        raise ValueError(f"duration {value!r} must be at least one second")
    return seconds


def iso_utc(when: datetime) -> str:
    """RFC 3339 in UTC with a Z, as Toggl's own examples send it."""
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _start_of(raw: Any, now: datetime, duration_s: int) -> datetime:
    if raw in (None, ""):
        return now - timedelta(seconds=duration_s)  # the entry ends now
    try:
        start = datetime.fromisoformat(str(raw).strip())
    except ValueError:
        raise ValueError(f"start {raw!r} is not an ISO 8601 time") from None
    if start.tzinfo is None:
        raise ValueError(f"start {raw!r} has no time zone; add Z or an offset")
    return start


def classify_toggl(
    response: httpx.Response, ctx: DeliveryContext, ws: Workspace, *, doing: str
) -> SendResult:
    """Map Toggl's answer to ok(entry id) / retry(after) / fail(reason)."""
    status = response.status_code
    if response.is_success:
        data = response_json(response)
        ref = str(data["id"]) if isinstance(data, dict) and "id" in data else None
        return ok(ref, status_code=status, pause_s=_quota_pause(response))
    detail = _error_detail(response, ws)
    where = f"{doing} in workspace {ws.workspace_id} (destination '{ws.name}')"
    if status in (401, 403):
        return fail(
            f"Toggl refused the API token ({status}) for {where}: {detail}; check api_token "
            "and that the token's user belongs to the workspace",
            status_code=status,
        )
    if status == 402:
        return _payment_required(response, ctx, where, detail)
    if status == 429:
        after = parse_retry_after(response.headers.get("retry-after"), now=ctx.now)
        return retry(after, f"rate limited by Toggl during {where}: {detail}", status_code=429)
    return classify_status(status, reason=f"Toggl answered {status} to {where}: {detail}")


def _payment_required(
    response: httpx.Response, ctx: DeliveryContext, where: str, detail: str
) -> SendResult:
    """402 is both "hourly quota used up" and "your plan lacks this feature"."""
    resets_in = parse_retry_after(response.headers.get("x-toggl-quota-resets-in"), now=ctx.now)
    remaining = response.headers.get("x-toggl-quota-remaining", "").strip()
    if resets_in is not None or remaining == "0" or "quota" in detail.lower():
        return retry(
            resets_in,
            f"Toggl API quota used up during {where}: {detail}"
            + (f"; resets in {resets_in:g}s" if resets_in is not None else ""),
            status_code=402,
        )
    return fail(
        f"Toggl answered 402 Payment Required to {where}: {detail}; the workspace's plan "
        "does not include this (billable, for one, needs a paid plan)",
        status_code=402,
    )


def _quota_pause(response: httpx.Response) -> float | None:
    """Seconds every worker should hold off when this answer spent the last of the quota."""
    if response.headers.get("x-toggl-quota-remaining", "").strip() != "0":
        return None
    try:
        seconds = float(response.headers.get("x-toggl-quota-resets-in", ""))
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def _error_detail(response: httpx.Response, ws: Workspace) -> str:
    """Toggl's error text: v9 answers a JSON string, a plain text line, or an object."""
    data = response_json(response)
    if isinstance(data, str):
        text = data
    elif isinstance(data, dict):
        text = str(data.get("message") or data.get("error") or data)
    else:
        text = response.text or response.reason_phrase
    return text.strip()[:300].replace(ws.token, "REDACTED") or response.reason_phrase
