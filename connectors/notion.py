"""Notion connector: update page properties, comment, create pages (API version 2025-09-03).

Docs: https://developers.notion.com/reference/patch-page (property values:
/reference/page-property-values), /reference/create-a-comment, /reference/post-page,
/reference/query-a-data-source. Errors: /reference/status-codes. Limits:
/reference/request-limits: about 3 requests/s per integration (429 with `Retry-After`);
a rich text `text.content` holds at most 2000 characters, an array at most 100 items.

Rules give plain values (`Status: Done`); turning them into Notion's property values needs
each property's type. The types come from the page itself (one GET the first time a page
is seen; the page's properties carry their types), cached per database or data source, so
pages of a known database cost no read; `types:` in the action skips the read entirely.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import httpx

from connectors.base import (
    SECRET_REF_SCHEMA,
    ConnectorEnv,
    DeliveryContext,
    Destination,
    RenderedAction,
    SendResult,
    classify_status,
    fail,
    ok,
    parse_retry_after,
    retry,
    secret_option,
    shared_budget_key,
)

log = logging.getLogger(__name__)
K = TypeVar("K")
V = TypeVar("V")

DEFAULT_API_URL = "https://api.notion.com"
DEFAULT_NOTION_VERSION = "2025-09-03"
OPERATIONS = ("update", "comment", "create")
TEXT_LIMIT = 2000  # rich text text.content
ITEMS_LIMIT = 100  # multi_select options, people, relations, rich text items
ELLIPSIS = "…"
#: How far back a retried create looks for the page an earlier attempt may have made.
CREATE_LOOKBACK = timedelta(hours=1)
SCHEMA_CACHE_SIZE = 256
PAGE_CACHE_SIZE = 4096
WRITABLE_TYPES = (
    "title",
    "rich_text",
    "number",
    "select",
    "status",
    "multi_select",
    "people",
    "relation",
    "date",
    "checkbox",
    "url",
    "email",
    "phone_number",
    "files",
)
_ID = re.compile(r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")
_NOTION_URL = re.compile(r"https?://(?:www\.)?[\w.-]*notion\.(?:so|site)/[^\s?#)\]>\"']*")

_PLAIN = {"type": ["string", "number", "boolean", "array", "object", "null"]}

params_schema: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["workspace"],
    "not": {
        "anyOf": [{"required": ["page", "discussion"]}, {"required": ["database", "data_source"]}]
    },
    "properties": {
        "workspace": {
            "type": "string",
            "description": "Name of a notion destination (one integration token).",
            "examples": ["notion"],
        },
        "page": {
            "type": "string",
            "description": "update, comment: page id or URL; the first notion.so URL in a text.",
            "examples": [
                "{{ event.data.entity.id }}",
                "https://www.notion.so/Launch-153104cd477e809d8dc4ff2d96ae3090",
            ],
        },
        "properties": {
            "type": "object",
            "additionalProperties": _PLAIN,
            "description": "update, create: property name → plain value, converted by its type.",
            "examples": [{"Status": "Done", "Estimate": 3, "Tags": ["web", "docs"]}],
        },
        "types": {
            "type": "object",
            "additionalProperties": {"enum": list(WRITABLE_TYPES)},
            "description": "update, create: property types, so no schema read is needed.",
            "examples": [{"Status": "status", "Due": "date"}],
        },
        "text": {
            "type": "string",
            "description": "comment: the comment (2000 characters; longer is cut with …).",
            "examples": ["Closed on GitHub: {{ event.data.entity.url }}"],
        },
        "discussion": {
            "type": "string",
            "description": "comment: discussion id to reply in, instead of `page`.",
            "examples": ["ab8293a4-b5c6-4d7e-b809-1a2b3c4d5e67"],
        },
        "database": {
            "type": "string",
            "description": "create (update: optional): database id or URL (one data source).",
            "examples": ["8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80"],
        },
        "data_source": {
            "type": "string",
            "description": "create (update: optional): data source id, instead of `database`.",
            "examples": ["c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"],
        },
        "title": {
            "type": "string",
            "description": "create: the new page's title (its title property).",
            "examples": ["{{ event.data.entity.title }}"],
        },
        "key_property": {
            "type": "string",
            "description": "create: text property to store the delivery key in (safe retries).",
            "examples": ["Switchboard key"],
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
            "description": "Internal integration secret (a secret reference).",
            "examples": [{"env": "NOTION_TOKEN"}],
        },
        "api_url": {
            "type": "string",
            "description": "API root; change only for a test double.",
            "examples": [DEFAULT_API_URL],
        },
        "notion_version": {
            "type": "string",
            "description": "Notion-Version header; 2025-09-03 or later has data sources.",
            "examples": [DEFAULT_NOTION_VERSION],
        },
    },
}


@dataclass(frozen=True, slots=True)
class Workspace:
    """Where and as which integration to call Notion, read from the destination per send."""

    name: str
    api_url: str
    version: str
    token: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Notion-Version": self.version}

    def redact(self, text: str) -> str:
        return text.replace(self.token, "REDACTED")


@dataclass(frozen=True, slots=True)
class Schema:
    """Property name → type of one database, data source, or lone page."""

    types: Mapping[str, str]
    names_by_id: Mapping[str, str]

    @classmethod
    def of(cls, properties: Any) -> Schema:
        types: dict[str, str] = {}
        ids: dict[str, str] = {}
        if isinstance(properties, Mapping):
            for name, prop in properties.items():
                if isinstance(prop, Mapping) and isinstance(prop.get("type"), str):
                    types[str(name)] = prop["type"]
                    if isinstance(prop.get("id"), str):
                        ids[prop["id"]] = str(name)
        return cls(types, ids)

    def type_of(self, key: str) -> str | None:
        """The type of a property given by name or by id."""
        return self.types.get(key) or self.types.get(self.names_by_id.get(key, ""))

    @property
    def title(self) -> str | None:
        return next((n for n, t in self.types.items() if t == "title"), None)


@dataclass(frozen=True, slots=True)
class Target:
    """Where notion.create puts a page: the parent to send and where to query for it."""

    label: str
    parent: Mapping[str, str]
    query_path: str
    schema: Schema


class NotionConnector:
    """`notion.update` (page properties), `notion.comment`, `notion.create` (database page)."""

    name: ClassVar[str] = "notion"
    params_schema: ClassVar[dict[str, Any]] = params_schema
    destination_schema: ClassVar[dict[str, Any]] = destination_schema
    destination_param: ClassVar[str | None] = "workspace"
    #: Notion's documented average of 3 requests per second per integration.
    rate_limits: ClassVar[tuple[tuple[int, float], ...]] = ((3, 1.0),)

    def __init__(self, env: ConnectorEnv) -> None:
        self._http = env.http
        self._schemas: dict[tuple[str, str], Schema] = {}
        self._parents: dict[tuple[str, str], str] = {}
        self._targets: dict[tuple[str, str], Target] = {}
        #: One schema read per target at a time: sends that start together (a list of new
        #: tasks) wait for the first read instead of each spending a request of the budget.
        self._reading: dict[tuple[str, str], asyncio.Lock] = {}

    def budget_key(self, destination: Destination | None) -> str | None:
        """Writes share the integration's budget with the notion source's page reads."""
        token = secret_option(destination, "token")
        return shared_budget_key("notion-api", token) if token else None

    async def send(self, action: RenderedAction, ctx: DeliveryContext) -> SendResult:
        if action.operation not in OPERATIONS:
            named = f"'notion.{action.operation}'" if action.operation else "'notion'"
            return fail(
                f"{named} is not an operation; use notion.update, notion.comment or notion.create"
            )
        try:
            ws = read_workspace(ctx.destination)
        except ValueError as exc:
            return fail(str(exc))
        doing = f"notion.{action.operation} (destination '{ws.name}')"
        try:
            if action.operation == "update":
                return await self._update(ws, action.params, ctx)
            if action.operation == "comment":
                return await self._comment(ws, action.params, ctx)
            return await self._create(ws, action.params, ctx)
        except ValueError as exc:
            return fail(f"cannot build {doing}: {ws.redact(str(exc))}")
        except httpx.TimeoutException:
            return retry(None, f"timed out calling Notion at {ws.api_url} for {doing}")
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            return fail(f"notion destination '{ws.name}': api_url is not a usable URL")
        except httpx.TransportError as exc:
            return retry(
                None, f"could not reach Notion at {ws.api_url} for {doing}: {type(exc).__name__}"
            )

    # --- operations ------------------------------------------------------------------------

    async def _update(
        self, ws: Workspace, params: Mapping[str, Any], ctx: DeliveryContext
    ) -> SendResult:
        """PATCH /v1/pages/{id} with the plain values converted by the page's schema."""
        page_id = notion_id(params.get("page"), "page")
        values = params.get("properties")
        if not isinstance(values, Mapping) or not values:
            raise ValueError("notion.update needs `properties` to set")
        types = _types(params)
        schema: Schema | None = None
        cached = False
        if any(str(k) not in types for k in values) and _names_database(params):
            # The rule names the page's database: its schema is read once for all its pages.
            target = await self._target(ws, params, ctx)
            if isinstance(target, SendResult):
                return target
            schema, cached = target[0].schema, target[1]
            cache: dict[Any, Any] = self._targets
            cache_key: Any = (ws.name, _target_key(params))
        elif any(str(k) not in types for k in values):
            found = await self._page_schema(ws, page_id, ctx, [str(k) for k in values])
            if isinstance(found, SendResult):
                return found
            schema, cached = found
            cache = self._schemas
            cache_key = (ws.name, self._parents.get((ws.name, page_id), page_id))
        body = {"properties": build_properties(values, schema, types)}
        response = await self._http.patch(
            f"{ws.api_url}/v1/pages/{page_id}", json=body, headers=ws.headers()
        )
        result = classify_notion(response, ctx, ws, doing=f"notion.update of page {page_id}")
        if result.outcome == "fail" and cached and result.status_code == 400:
            return _stale(cache, cache_key, result)
        return result

    async def _comment(
        self, ws: Workspace, params: Mapping[str, Any], ctx: DeliveryContext
    ) -> SendResult:
        """POST /v1/comments on a page, or as a reply in a discussion."""
        if ctx.previous_ref:
            return SendResult(
                "ok", reason="comment already posted by an earlier send", ref=ctx.previous_ref
            )
        text = str(params.get("text") or "")
        if not text.strip():
            raise ValueError("notion.comment needs `text`")
        body: dict[str, Any] = {"rich_text": rich_text(text, "comment text")}
        if params.get("discussion"):
            body["discussion_id"] = notion_id(params["discussion"], "discussion")
            where = f"discussion {body['discussion_id']}"
        else:
            page_id = notion_id(params.get("page"), "page")
            where = f"page {page_id}"
            body["parent"] = {"page_id": page_id}
        response = await self._http.post(
            f"{ws.api_url}/v1/comments", json=body, headers=ws.headers()
        )
        return classify_notion(response, ctx, ws, doing=f"notion.comment on {where}")

    async def _create(
        self, ws: Workspace, params: Mapping[str, Any], ctx: DeliveryContext
    ) -> SendResult:
        """POST /v1/pages under a data source (or a database's one data source)."""
        if ctx.previous_ref:
            return SendResult(
                "ok", reason="page already created by an earlier send", ref=ctx.previous_ref
            )
        found_target = await self._target(ws, params, ctx)
        if isinstance(found_target, SendResult):
            return found_target
        target, cached = found_target
        values = dict(params.get("properties") or {})
        title = str(params["title"]) if params.get("title") not in (None, "") else None
        if title is not None:
            if target.schema.title is None:
                raise ValueError(f"{target.label} has no title property")
            if target.schema.title in values:
                raise ValueError(
                    f"give the title once: `title` or properties.{target.schema.title}"
                )
            values = {target.schema.title: title, **values}
        key_property = str(params.get("key_property") or "")
        if key_property:
            if target.schema.type_of(key_property) != "rich_text":
                raise ValueError(
                    f"key_property {key_property!r} is not a text property of {target.label}"
                )
            values[key_property] = ctx.idempotency_key
        if not values:
            raise ValueError("notion.create needs a `title` or `properties`")
        properties = build_properties(values, target.schema, _types(params))
        if ctx.attempt > 1:
            # Notion takes no idempotency key: an earlier attempt that timed out may have
            # created the page, so look for it before creating another.
            found = await self._find_created(ws, target, ctx, title, key_property)
            if found is not None:
                return found
        body = {"parent": dict(target.parent), "properties": properties}
        response = await self._http.post(f"{ws.api_url}/v1/pages", json=body, headers=ws.headers())
        result = classify_notion(response, ctx, ws, doing=f"notion.create in {target.label}")
        if result.outcome == "fail" and cached and result.status_code == 400:
            return _stale(self._targets, (ws.name, _target_key(params)), result)
        return result

    # --- schema reads ----------------------------------------------------------------------

    async def _page_schema(
        self, ws: Workspace, page_id: str, ctx: DeliveryContext, names: list[str]
    ) -> tuple[Schema, bool] | SendResult:
        """The page's schema and whether it came from the cache (read the page otherwise)."""
        parent = self._parents.get((ws.name, page_id))
        schema = self._schemas.get((ws.name, parent)) if parent else None
        if schema is not None and all(schema.type_of(n) for n in names):
            return schema, True
        response = await self._http.get(f"{ws.api_url}/v1/pages/{page_id}", headers=ws.headers())
        if not response.is_success:
            return classify_notion(
                response, ctx, ws, doing=f"reading page {page_id} for its property types"
            )
        page = _json(response)
        if not isinstance(page, Mapping):
            return retry(None, f"Notion answered reading page {page_id} without a JSON object")
        if page.get("in_trash") or page.get("archived"):
            return fail(f"page {page_id} is in the Notion trash; restore it to update it")
        schema = Schema.of(page.get("properties"))
        parent = _parent_key(page.get("parent")) or page_id
        _remember(self._parents, (ws.name, page_id), parent, PAGE_CACHE_SIZE)
        _remember(self._schemas, (ws.name, parent), schema, SCHEMA_CACHE_SIZE)
        return schema, False

    async def _target(
        self, ws: Workspace, params: Mapping[str, Any], ctx: DeliveryContext
    ) -> tuple[Target, bool] | SendResult:
        """Parent and schema of a data source or a database's only one; and if cached."""
        key = _target_key(params)
        if (cached := self._targets.get((ws.name, key))) is not None:
            return cached, True
        lock = self._reading.setdefault((ws.name, key), asyncio.Lock())
        async with lock:
            if (cached := self._targets.get((ws.name, key))) is not None:
                return cached, True
            return await self._read_target(ws, key, ctx)

    async def _read_target(
        self, ws: Workspace, key: str, ctx: DeliveryContext
    ) -> tuple[Target, bool] | SendResult:
        kind, object_id = key.split(":", 1)
        if kind == "database":
            response = await self._http.get(
                f"{ws.api_url}/v1/databases/{object_id}", headers=ws.headers()
            )
            if not response.is_success:
                return classify_notion(response, ctx, ws, doing=f"reading database {object_id}")
            database = _object(response)
            if isinstance(database.get("properties"), Mapping):  # before 2025-09-03
                target = Target(
                    f"database {object_id}",
                    {"database_id": object_id},
                    f"/v1/databases/{object_id}/query",
                    Schema.of(database["properties"]),
                )
                _remember(self._targets, (ws.name, key), target, SCHEMA_CACHE_SIZE)
                return target, False
            sources = [s for s in database.get("data_sources") or [] if isinstance(s, Mapping)]
            if len(sources) != 1:
                names = ", ".join(str(s.get("name")) for s in sources) or "none"
                return fail(
                    f"database {object_id} has {len(sources)} data sources ({names}); "
                    "name the one to create in with `data_source`"
                )
            object_id = notion_id(sources[0].get("id"), "data source")
        response = await self._http.get(
            f"{ws.api_url}/v1/data_sources/{object_id}", headers=ws.headers()
        )
        if not response.is_success:
            return classify_notion(response, ctx, ws, doing=f"reading data source {object_id}")
        source = _object(response)
        target = Target(
            f"data source {object_id}",
            {"type": "data_source_id", "data_source_id": object_id},
            f"/v1/data_sources/{object_id}/query",
            Schema.of(source.get("properties")),
        )
        _remember(self._targets, (ws.name, key), target, SCHEMA_CACHE_SIZE)
        return target, False

    async def _find_created(
        self,
        ws: Workspace,
        target: Target,
        ctx: DeliveryContext,
        title: str | None,
        key_property: str,
    ) -> SendResult | None:
        """ok(page id) when an earlier attempt already made the page; a read error as is."""
        if key_property:
            match: dict[str, Any] = {
                "property": key_property,
                "rich_text": {"equals": ctx.idempotency_key},
            }
        elif title is not None and target.schema.title is not None:
            since = (ctx.now - CREATE_LOOKBACK).astimezone(UTC).replace(microsecond=0)
            match = {
                "and": [
                    {"property": target.schema.title, "title": {"equals": _cut(title, "title")}},
                    {
                        "timestamp": "created_time",
                        "created_time": {"on_or_after": since.isoformat().replace("+00:00", "Z")},
                    },
                ]
            }
        else:
            return None  # nothing to recognise the page by: create, accepting a duplicate
        body = {
            "filter": match,
            "page_size": 1,
            "sorts": [{"timestamp": "created_time", "direction": "descending"}],
        }
        response = await self._http.post(
            ws.api_url + target.query_path, json=body, headers=ws.headers()
        )
        if not response.is_success:
            return classify_notion(
                response, ctx, ws, doing=f"looking for an earlier page in {target.label}"
            )
        results = _object(response).get("results") or []
        first = results[0] if results and isinstance(results[0], Mapping) else None
        if first is None or not isinstance(first.get("id"), str):
            return None
        return SendResult(
            "ok",
            reason=f"page {first['id']} was created by an earlier attempt",
            ref=first["id"],
            status_code=response.status_code,
        )


# --- destination and ids ---------------------------------------------------------------------


def read_workspace(destination: Destination | None) -> Workspace:
    """The destination's settings, or ValueError saying what to fix."""
    if destination is None:
        raise ValueError("notion action has no destination ('workspace')")
    token = secret_option(destination, "token")
    if not token:
        raise ValueError(f"notion destination '{destination.name}' has no token")
    options = destination.options
    return Workspace(
        name=destination.name,
        api_url=str(options.get("api_url") or DEFAULT_API_URL).rstrip("/"),
        version=str(options.get("notion_version") or DEFAULT_NOTION_VERSION),
        token=token,
    )


def notion_id(value: Any, what: str) -> str:
    """A dashed lowercase id from an id, a Notion URL, or the first Notion URL in a text."""
    text = str(value or "").strip()
    if not text:
        raise ValueError(f"no {what} id given")
    if _ID.fullmatch(text):
        return _dashed(text)
    url = _NOTION_URL.search(text)
    ids = _ID.findall(url.group(0)) if url else []
    if not ids:
        raise ValueError(f"{what} {text[:80]!r} is not a Notion id or notion.so URL")
    return _dashed(ids[-1])


def _dashed(raw: str) -> str:
    h = raw.replace("-", "").lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _parent_key(parent: Any) -> str | None:
    if not isinstance(parent, Mapping):
        return None
    for key in ("data_source_id", "database_id"):
        if isinstance(parent.get(key), str):
            return f"{key}:{parent[key]}"
    return None


def _target_key(params: Mapping[str, Any]) -> str:
    if params.get("data_source"):
        return "data_source:" + notion_id(params["data_source"], "data source")
    if params.get("database"):
        return "database:" + notion_id(params["database"], "database")
    raise ValueError("notion.create needs `database` or `data_source`")


def _names_database(params: Mapping[str, Any]) -> bool:
    return bool(params.get("database") or params.get("data_source"))


def _types(params: Mapping[str, Any]) -> dict[str, str]:
    raw = params.get("types") or {}
    if not isinstance(raw, Mapping):
        raise ValueError("`types` must map property names to Notion types")
    bad = {k: v for k, v in raw.items() if v not in WRITABLE_TYPES}
    if bad:
        raise ValueError(
            f"types {bad} are not writable Notion types; use {', '.join(WRITABLE_TYPES)}"
        )
    return {str(k): str(v) for k, v in raw.items()}


def _stale(cache: dict[K, Any], key: K, result: SendResult) -> SendResult:
    """A 400 built from a cached schema: forget it, and let one more attempt read it fresh.

    A property renamed or retyped in Notion since it was cached looks like a bad value; the
    cost of this rule is one extra attempt for a value that is really wrong.
    """
    cache.pop(key, None)
    return retry(
        None,
        result.reason + "; the property types came from a cached schema: read again next attempt",
        status_code=result.status_code,
    )


def _remember(cache: dict[K, V], key: K, value: V, size: int) -> None:
    cache.pop(key, None)
    if len(cache) >= size:
        cache.pop(next(iter(cache)))
    cache[key] = value


# --- plain values → Notion property values ---------------------------------------------------


def build_properties(
    values: Mapping[str, Any], schema: Schema | None, types: Mapping[str, str]
) -> dict[str, Any]:
    """The `properties` body; every problem is reported at once, naming the property."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for key, value in values.items():
        name = str(key)
        kind = types.get(name) or (schema.type_of(name) if schema else None)
        if kind is None:
            known = ", ".join(schema.types) if schema else "none"
            problems.append(f"no property {name!r} (known: {known})")
            continue
        if kind not in WRITABLE_TYPES:
            problems.append(
                f"{name!r} is a {kind} property, which Notion computes; it cannot be set"
            )
            continue
        try:
            out[name] = {kind: property_value(kind, value, name)}
        except ValueError as exc:
            problems.append(f"{name!r} ({kind}): {exc}")
    if problems:
        raise ValueError("; ".join(problems))
    return out


def property_value(kind: str, value: Any, name: str = "") -> Any:
    """The inner value for one property type; a mapping is sent as Notion's own shape."""
    if isinstance(value, Mapping):
        return dict(value)
    if kind in ("title", "rich_text"):
        return rich_text("" if value is None else str(value), name)
    if _is_empty(value):
        return [] if kind in ("multi_select", "people", "relation", "files") else None
    if kind == "number":
        return _number(value)
    if kind == "checkbox":
        return _boolean(value)
    if kind in ("select", "status"):
        return {"name": str(value).strip()}
    if kind == "date":
        return _date(str(value).strip())
    if kind in ("url", "email", "phone_number"):
        limit = TEXT_LIMIT if kind == "url" else 200
        if len(str(value)) > limit:
            raise ValueError(f"longer than Notion's {limit} characters")
        return str(value).strip()
    items = _items(value)
    if len(items) > ITEMS_LIMIT:
        raise ValueError(f"{len(items)} items; Notion takes at most {ITEMS_LIMIT}")
    if kind == "multi_select":
        return [{"name": item} for item in items]
    if kind == "people":
        bad = [i for i in items if not _ID.fullmatch(i)]
        if bad:
            raise ValueError(f"people need Notion user ids, not {bad}")
        return [{"object": "user", "id": _dashed(i)} for i in items]
    if kind == "relation":
        return [{"id": notion_id(i, "related page")} for i in items]
    return [  # files: external URLs
        {
            "name": (i.rstrip("/").rsplit("/", 1)[-1] or i)[:100],
            "type": "external",
            "external": {"url": i},
        }
        for i in items
    ]


def rich_text(text: str, what: str) -> list[dict[str, Any]]:
    """One text item, cut at Notion's 2000-character limit with a visible marker."""
    if not text:
        return []
    return [{"type": "text", "text": {"content": _cut(text, what)}}]


def _cut(text: str, what: str) -> str:
    if len(text) <= TEXT_LIMIT:
        return text
    log.warning("notion: %s cut from %d to %d characters", what, len(text), TEXT_LIMIT)
    return text[: TEXT_LIMIT - 1] + ELLIPSIS


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        number: int | float = value
    else:
        text = str(value).strip()
        try:
            number = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise ValueError(f"{value!r} is not true or false")


def _date(text: str) -> dict[str, str]:
    """`2026-12-01`, an ISO 8601 time, or a range `start/end`."""
    parts = text.split("/", 1)
    for part in parts:
        try:
            (date if len(part) == 10 else datetime).fromisoformat(part)
        except ValueError:
            raise ValueError(f"{part!r} is not an ISO 8601 date or time") from None
    return {"start": parts[0], "end": parts[1]} if len(parts) == 2 else {"start": parts[0]}


def _items(value: Any) -> list[str]:
    """A list from a list, a rendered list (`['a', 'b']`), or a comma-separated string."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                value = json.loads(text)
            except ValueError:
                try:
                    value = ast.literal_eval(text)  # how Jinja2 renders a Python list
                except (ValueError, SyntaxError):
                    raise ValueError(f"{text[:80]!r} is not a list") from None
        else:
            value = text.split(",")
    if not isinstance(value, list | tuple):
        value = [value]
    return [str(v).strip() for v in value if v is not None and str(v).strip()]


# --- what Notion's answer means --------------------------------------------------------------


def classify_notion(
    response: httpx.Response, ctx: DeliveryContext, ws: Workspace, *, doing: str
) -> SendResult:
    """Map Notion's answer to ok(object id) / retry(after) / fail(reason)."""
    status = response.status_code
    data = _json(response)
    if response.is_success:
        ref = data.get("id") if isinstance(data, Mapping) else None
        return ok(str(ref) if ref else None, status_code=status)
    error = data if isinstance(data, Mapping) else {}
    code = str(error.get("code") or f"http_{status}")
    message = ws.redact(str(error.get("message") or response.text or response.reason_phrase)[:400])
    where = f"{doing} (destination '{ws.name}')"
    detail = f"Notion answered {status} {code} to {where}: {message}"
    if status == 429:
        after = parse_retry_after(response.headers.get("retry-after"), now=ctx.now)
        return retry(after, detail, status_code=429)
    if status == 409:
        return retry(None, detail, status_code=409)  # conflict_error: "try again"
    if status == 401:
        return fail(f"{detail}; check the destination's token", status_code=401)
    if status == 403:
        return fail(
            f"{detail}; share the page or database with the integration (••• → Connections), "
            "and for notion.comment give it the 'Insert comments' capability",
            status_code=403,
        )
    if status == 404:
        return fail(f"{detail}; check the id, and share it with the integration", status_code=404)
    return classify_status(status, reason=detail)


def _object(response: httpx.Response) -> Mapping[str, Any]:
    data = _json(response)
    return data if isinstance(data, Mapping) else {}


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
