"""Small request/response helpers for the JSON API: errors, query parsing, masking."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse

from connectors.base import parse_duration, replace_lone_surrogates
from hub.errors import RequestRejected
from hub.logging import Masker
from hub.runtime import Runtime
from hub.store import Store
from hub.store.queries import Page

F = TypeVar("F")
P = TypeVar("P")
T = TypeVar("T")


class BadRequest(RequestRejected):
    """A malformed API request; answered by the app's RequestRejected handler as JSON."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, status: int = 400, code: str = "bad_request") -> None:
        super().__init__(message, code=code)
        self.status = status


def error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    body = {"code": code, "message": replace_lone_surrogates(message)}
    return JSONResponse(body, status_code=status, headers=headers)


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.state.runtime
    return runtime


def masked_json(request: Request, data: Any, status: int = 200) -> JSONResponse:
    """A JSON answer with every configured secret masked."""
    masker = Masker(runtime_of(request).settings.secret_values())
    return JSONResponse(masker(data), status_code=status)


def query_since(request: Request, now: float) -> float | None:
    """`since` as RFC 3339 (`2026-11-21T10:00:00Z`) or a duration back from now (`1h`)."""
    value = request.query_params.get("since")
    if not value:
        return None
    try:
        return now - parse_duration(value).total_seconds()
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"since={value!r}: write a duration (1h) or a time (RFC 3339)") from exc
    if parsed.tzinfo is None:
        raise BadRequest(f"since={value!r} has no time zone; add Z or +00:00")
    return parsed.timestamp()


def query_int(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    value = request.query_params.get(name)
    if value is None:
        return default
    if not value.isdigit() or not low <= int(value) <= high:
        raise BadRequest(f"{name}={value!r} must be a whole number from {low} to {high}")
    return int(value)


def query_choice(request: Request, name: str, choices: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name) or None
    if value is not None and value not in choices:
        raise BadRequest(f"{name}={value!r} is not one of: {', '.join(choices)}")
    return value


async def list_page(
    request: Request,
    read_filter: Callable[[Request, float], F],
    list_items: Callable[[Store, F], P],
    refuse: Callable[[str], Exception] = BadRequest,
) -> tuple[F, P]:
    """A list's filter, read from the query, and its page, listed off the event loop.

    The store's ValueError (a cursor we did not write) is the client's mistake: `refuse`d
    (the API's JSON 400 by default; the dashboard passes its own).
    """
    runtime = runtime_of(request)
    f = read_filter(request, runtime.clock.now().timestamp())
    try:
        return f, await asyncio.to_thread(list_items, runtime.store, f)
    except ValueError as exc:
        raise refuse(str(exc)) from exc


async def page_json(
    request: Request,
    read_filter: Callable[[Request, float], F],
    list_items: Callable[[Store, F], Page[T]],
    view: Callable[[T], dict[str, Any]],
) -> JSONResponse:
    """A list endpoint's answer: one page of `view`s of the listed items, and the cursor
    of the next page, masked."""
    _, page = await list_page(request, read_filter, list_items)
    items = [view(item) for item in page.items]
    return masked_json(request, {"items": items, "next_cursor": page.next_cursor})


async def json_body(request: Request, *, limit: int) -> dict[str, Any]:
    """The body as a JSON object, at most `limit` bytes."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(f"body is over {limit} bytes", status=413, code="payload_too_large")
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise BadRequest(f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return dict(replace_lone_surrogates(data))
