"""`POST /intake/{name}`: a task list in, its tasks stored as events (or only previewed).

Authenticated with a bearer token: the intake's own secret (`sources.intake.secret`), or
one of the admin API's tokens (`admin.tokens`) with role operator or admin: a list creates
Notion pages, which is as much as a replay may do. `?dry_run=1`
answers the preview and stores nothing. The format comes from `?format=`, else from the
Content-Type, else from the text itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hub.api.http import BadRequest, runtime_of
from hub.auth.credentials import Credentials, bearer_token
from hub.ingress.receive import read_body
from hub.sources.intake import NAME as INTAKE_SOURCE
from hub.tasks.intake import has_intake, intake_names, is_intake_name, submit_tasks
from hub.tasks.lists import FORMATS, ListError, detect_format, parse_task_list

log = logging.getLogger("switchboard.intake")
_TRUE = ("1", "true", "yes")
#: Roles that may look but not send (`read` is the older name of `viewer`).
_READ_ONLY = ("viewer", "read")


async def receive_task_list(request: Request) -> Response:
    runtime = runtime_of(request)
    _authorize(request)
    name = request.path_params["name"]
    if INTAKE_SOURCE not in runtime.sources:
        raise BadRequest(
            "the task intake is off: add `intake: {}` under sources: in switchboard.yaml",
            status=404,
            code="intake_disabled",
        )
    ruleset = runtime.rules.current
    if not is_intake_name(name) or not has_intake(ruleset, name):
        known = ", ".join(intake_names(ruleset)) or "none"
        raise BadRequest(
            f"no intake '{name}': no rule listens on intake.{name} (intakes: {known})",
            status=404,
            code="unknown_intake",
        )
    body = await read_body(request, runtime.settings.server.max_body_bytes)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the task list must be UTF-8 text", code="bad_encoding") from None
    hint = request.query_params.get("format")
    if hint is not None and hint not in FORMATS:
        raise BadRequest(f"format '{hint}' is unknown; use {', '.join(FORMATS)}")
    try:
        task_list = parse_task_list(
            text, detect_format(text, hint=hint or request.headers.get("content-type"))
        )
    except ListError as exc:
        raise BadRequest(str(exc), status=422, code="unreadable_list") from exc
    dry_run = request.query_params.get("dry_run", "").lower() in _TRUE
    received_at = runtime.clock.now().timestamp()
    result = await asyncio.to_thread(
        submit_tasks, runtime.store, name, task_list, received_at=received_at, dry_run=dry_run
    )
    if result.new_event_ids and not dry_run:
        try:
            await asyncio.to_thread(runtime.queue.enqueue_events, result.new_event_ids)
        except Exception:  # the events are stored: the worker's sweeper enqueues them later
            log.exception("broker enqueue failed for %d intake tasks", len(result.new_event_ids))
    return JSONResponse(result.to_dict(), status_code=200 if dry_run else 202)


def _authorize(request: Request) -> None:
    """The intake's own secret (`sources.intake.secret`), or an admin token (operator+)."""
    settings = runtime_of(request).settings
    token = bearer_token(request.headers.get("authorization")) or ""
    own = settings.sources.get(INTAKE_SOURCE)
    if own is not None and own.secret is not None:
        expected = hashlib.sha256(own.secret.reveal().encode()).digest()
        if hmac.compare_digest(hashlib.sha256(token.encode()).digest(), expected):
            return
    admin = settings.admin
    principal = Credentials(admin).by_token(token) if token and admin is not None else None
    if principal is None:
        raise BadRequest(
            "send a valid token: Authorization: Bearer <token> (sources.intake.secret "
            "or one of admin.tokens)",
            status=401,
            code="unauthorized",
        )
    if principal.role in _READ_ONLY:
        raise BadRequest(
            f"token '{principal.name}' may not send task lists; this needs role operator",
            status=403,
            code="forbidden",
        )
