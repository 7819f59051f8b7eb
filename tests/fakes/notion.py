"""A fake Notion REST API serving the shared fixtures; it can rate-limit and fail on cue.

Writes behave as Notion's do (/reference/post-page, /reference/patch-page,
/reference/create-a-comment): a created page comes back in the page object shape, with
each property's id and type from its data source. With `rate_per_s` set, requests beyond
Notion's average of 3 per second (bursts of `burst` allowed, per integration token) get
429 rate_limited with a Retry-After, as /reference/request-limits describes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.clock import SystemClock
from tests.fakes.notion_filter import FilterInvalid, matches, sort_key
from tests.support import fixture_path

FAKE_TOKEN = "ntn_fixture_not_real_token"


def notion_fixture(*parts: str) -> dict[str, Any]:
    """A fixture under shared/fixtures/notion/, without the `_headers` notes key."""
    data = json.loads(fixture_path("notion", *parts).read_text(encoding="utf-8"))
    if isinstance(data, dict):
        data.pop("_headers", None)
    return data  # type: ignore[no-any-return]  # every Notion fixture here is an object


def _key(object_id: str) -> str:
    return object_id.replace("-", "").lower()


@dataclass
class Seen:
    """One request the fake answered."""

    path: str
    notion_version: str | None
    status: int
    #: time.monotonic() when the request was answered, to check the rate seen by Notion.
    at: float = 0.0


@dataclass
class FakeNotion:
    """GET /v1/pages|databases|data_sources/{id} and POST .../{id}/query (filters, sorts,
    cursors as Notion pages them); `script` replies come first, in order."""

    token: str = FAKE_TOKEN
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    databases: dict[str, dict[str, Any]] = field(default_factory=dict)
    data_sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: (status, body, headers) to answer with before serving objects normally.
    script: list[tuple[int, Any, dict[str, str]]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    #: Seconds each query takes to answer (a slow database, for deferred chat answers).
    query_delay_s: float = 0.0
    #: Requests per second allowed per token (Notion: 3 on average); None: no limit.
    rate_per_s: float | None = None
    #: Requests allowed at once above the average (a token bucket's size).
    burst: int = 4
    #: Comments posted (POST /v1/comments), as Notion returned them.
    comments: list[dict[str, Any]] = field(default_factory=list)
    #: Bodies of POST /v1/pages and PATCH /v1/pages/{id}, in order: (method, page id, body).
    writes: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    now: Callable[[], datetime] = field(default_factory=lambda: SystemClock().now)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def with_fixtures(cls) -> FakeNotion:
        """Launch post (before the edit), pricing page, release notes; the Tasks schema."""
        fake = cls()
        for name in ("launch-post.before", "pricing-page", "release-notes"):
            fake.put_page(notion_fixture("api", "pages", f"{name}.json"))
        database = notion_fixture("api", "databases", "tasks.json")
        fake.databases[_key(database["id"])] = database
        source = notion_fixture("api", "data_sources", "tasks.json")
        fake.data_sources[_key(source["id"])] = source
        return fake

    def put_page(self, page: dict[str, Any]) -> None:
        with self._lock:
            self.pages[_key(page["id"])] = page

    def rate_limit_next(self, retry_after: str | None = "2") -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self.script.append((429, notion_fixture("api", "errors", "429-rate_limited.json"), headers))

    def fail_next(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        default = {
            "object": "error",
            "status": status,
            "code": "internal_server_error",
            "message": "Unexpected error occurred.",
        }
        self.script.append((status, default if body is None else body, headers or {}))

    def app(self) -> Starlette:
        def store_for(kind: str) -> dict[str, dict[str, Any]]:
            return {
                "pages": self.pages,
                "databases": self.databases,
                "data_sources": self.data_sources,
            }[kind]

        async def get_object(request: Request) -> Response:
            kind = request.url.path.split("/")[2]
            object_id = request.path_params["object_id"]
            answer = self._answer(request, store_for(kind), kind, object_id)
            return self._reply(request, *answer)

        async def query(request: Request) -> Response:
            kind = request.url.path.split("/")[2]
            object_id = request.path_params["object_id"]
            await asyncio.sleep(self.query_delay_s)
            status, body, headers = self._answer(request, store_for(kind), kind, object_id)
            if status == 200 and "results" not in body:  # the container, not a scripted reply
                status, body = self._query(kind, body, await request.json())
            return self._reply(request, status, body, headers)

        async def create_page(request: Request) -> Response:
            body = await request.json()
            return self._reply(request, *self._write(request, body, None))

        async def update_page(request: Request) -> Response:
            body = await request.json()
            page_id = request.path_params["object_id"]
            return self._reply(request, *self._write(request, body, page_id))

        async def create_comment(request: Request) -> Response:
            return self._reply(request, *self._comment(request, await request.json()))

        return Starlette(
            routes=[
                Route("/v1/pages", create_page, methods=["POST"]),
                Route("/v1/pages/{object_id}", update_page, methods=["PATCH"]),
                Route("/v1/comments", create_comment, methods=["POST"]),
            ]
            + [
                Route(f"/v1/{kind}/{{object_id}}", get_object, methods=["GET"])
                for kind in ("pages", "databases", "data_sources")
            ]
            + [
                Route(f"/v1/{kind}/{{object_id}}/query", query, methods=["POST"])
                for kind in ("databases", "data_sources")
            ]
        )

    def _reply(self, request: Request, status: int, body: Any, headers: dict[str, str]) -> Response:
        """Answer, and note what was asked and when (the rate Notion would see)."""
        with self._lock:
            self.seen.append(
                Seen(
                    request.url.path,
                    request.headers.get("notion-version"),
                    status,
                    time.monotonic(),
                )
            )
        return JSONResponse(body, status_code=status, headers=headers)

    def _query(self, kind: str, container: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        """One page of the container's pages that pass the filter, sorted, from the cursor."""
        if kind == "databases":
            parents = {_key(container["id"])}
        else:
            parents = {_key(container["id"]), _key(container["parent"]["database_id"])}
        with self._lock:
            pages = [
                p
                for p in self.pages.values()
                if {_key(str(v)) for k, v in p["parent"].items() if k.endswith("_id")} & parents
                and not p.get("in_trash")
            ]
        try:
            if body.get("filter"):
                pages = [p for p in pages if matches(p, body["filter"])]
            pages.sort(key=lambda p: p["created_time"], reverse=True)  # Notion's default
            for sort in reversed(body.get("sorts") or []):
                pages.sort(
                    key=partial(sort_key, sort=sort), reverse=sort.get("direction") == "descending"
                )
        except FilterInvalid as exc:
            error = notion_fixture("api", "errors", "400-validation_error.json")
            error["message"] = str(exc)
            return 400, error
        size = min(int(body.get("page_size", 100)), 100)
        start = 0
        if cursor := body.get("start_cursor"):
            start = next((i for i, p in enumerate(pages) if p["id"] == cursor), len(pages))
        chunk = pages[start : start + size]
        more = start + size < len(pages)
        return 200, {
            "object": "list",
            "results": chunk,
            "next_cursor": pages[start + size]["id"] if more else None,
            "has_more": more,
            "type": "page_or_database",
            "page_or_database": {},
        }

    def rate_limited(self) -> int:
        """How many requests were answered 429."""
        with self._lock:
            return sum(1 for s in self.seen if s.status == 429)

    def _over_rate(self, request: Request) -> tuple[int, Any, dict[str, str]] | None:
        """A 429 when the caller's token bucket is empty (rate_per_s tokens a second)."""
        if self.rate_per_s is None:
            return None
        key = request.headers.get("authorization") or ""
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate_per_s)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate_per_s
                body = notion_fixture("api", "errors", "429-rate_limited.json")
                return 429, body, {"Retry-After": str(max(1, round(wait + 0.5)))}
            self._buckets[key] = (tokens - 1.0, now)
        return None

    def _check(self, request: Request) -> tuple[int, Any, dict[str, str]] | None:
        """A scripted reply, a 429 over the rate, or a 401 for a wrong token; else None."""
        with self._lock:
            if self.script:
                return self.script.pop(0)
        if (limited := self._over_rate(request)) is not None:
            return limited
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, notion_fixture("api", "errors", "401-unauthorized.json"), {}
        return None

    def _write(
        self, request: Request, body: dict[str, Any], page_id: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        """POST /v1/pages (page_id None) or PATCH /v1/pages/{page_id}."""
        if (refused := self._check(request)) is not None:
            return refused
        stamp = self.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._lock:
            if page_id is None:
                parent = dict(body.get("parent") or {})
                ids = [str(v) for k, v in parent.items() if k.endswith("_id")]
                source = next(
                    (
                        s
                        for s in self.data_sources.values()
                        if {_key(s["id"]), _key(s["parent"]["database_id"])}
                        & {_key(i) for i in ids}
                    ),
                    None,
                )
                if source is None:
                    return self._not_found("database", ids[0] if ids else "")
                page: dict[str, Any] = {
                    "object": "page",
                    "id": str(uuid.uuid4()),
                    "created_time": stamp,
                    "last_edited_time": stamp,
                    "parent": {"type": next(iter(parent)), **parent}
                    if "type" not in parent
                    else parent,
                    "archived": False,
                    "in_trash": False,
                    "properties": {},
                }
                schema = source["properties"]
            else:
                found = self.pages.get(_key(page_id))
                if found is None:
                    return self._not_found("page", page_id)
                page, schema = found, found["properties"]
            for name, value in (body.get("properties") or {}).items():
                if name not in schema:
                    error = notion_fixture("api", "errors", "400-validation_error.json")
                    error["message"] = f"{name} is not a property that exists."
                    return 400, error, {}
                kind = schema[name]["type"]
                page["properties"][name] = {
                    "id": schema[name]["id"],
                    "type": kind,
                    kind: _as_read(kind, value[kind]),
                }
            page["last_edited_time"] = stamp
            self.pages[_key(page["id"])] = page
            self.writes.append(("POST" if page_id is None else "PATCH", page["id"], body))
            return 200, page, {}

    def _comment(self, request: Request, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        if (refused := self._check(request)) is not None:
            return refused
        page_id = str((body.get("parent") or {}).get("page_id") or "")
        with self._lock:
            if page_id and _key(page_id) not in self.pages:
                return self._not_found("page", page_id)
            comment = notion_fixture("api", "comments.create.response.json")
            comment["id"] = str(uuid.uuid4())
            comment["parent"] = {"type": "page_id", "page_id": page_id}
            comment["rich_text"] = _as_read("rich_text", body.get("rich_text") or [])
            self.comments.append(comment)
        return 200, comment, {}

    @staticmethod
    def _not_found(kind: str, object_id: str) -> tuple[int, Any, dict[str, str]]:
        body = notion_fixture("api", "errors", "404-object_not_found.json")
        body["message"] = (
            f"Could not find {kind} with ID: {object_id}. Make sure the "
            "relevant pages and databases are shared with your integration."
        )
        return 404, body, {}

    def _answer(
        self, request: Request, objects: dict[str, dict[str, Any]], kind: str, object_id: str
    ) -> tuple[int, Any, dict[str, str]]:
        if (refused := self._check(request)) is not None:
            return refused
        with self._lock:
            found = objects.get(_key(object_id))
        if found is None:
            body = notion_fixture("api", "errors", "404-object_not_found.json")
            body["message"] = (
                f"Could not find {kind.rstrip('s')} with ID: {object_id}. Make sure the "
                "relevant pages and databases are shared with your integration."
            )
            return 404, body, {}
        return 200, found, {}


def _as_read(kind: str, value: Any) -> Any:
    """A written property value as Notion reads it back (rich text gains `plain_text`)."""
    if kind in ("title", "rich_text") and isinstance(value, list):
        return [
            {
                "type": "text",
                "text": {"content": item["text"]["content"], "link": None},
                "plain_text": item["text"]["content"],
                "href": None,
            }
            for item in value
            if isinstance(item, dict) and isinstance(item.get("text"), dict)
        ]
    return value
