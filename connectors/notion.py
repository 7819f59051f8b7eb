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

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import Any, ClassVar

import httpx

from connectors._notion_api import (
    DEFAULT_API_URL,
    DEFAULT_NOTION_VERSION,
    Schema,
    Target,
    Workspace,
    _names_database,
    _object,
    _parent_key,
    _remember,
    _stale,
    _target_key,
    classify_notion,
    notion_id,
    read_workspace,
)
from connectors._notion_props import WRITABLE_TYPES, _cut, _types, build_properties, rich_text
from connectors.base import (
    SECRET_REF_SCHEMA,
    Connector,
    ConnectorEnv,
    DeliveryContext,
    Destination,
    RenderedAction,
    SendResult,
    fail,
    response_json,
    retry,
    secret_option,
    shared_budget_key,
)

log = logging.getLogger(__name__)

OPERATIONS = ("update", "comment", "create")
#: How far back a retried create looks for the page an earlier attempt may have made.
CREATE_LOOKBACK = timedelta(hours=1)
SCHEMA_CACHE_SIZE = 256
PAGE_CACHE_SIZE = 4096

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


class NotionConnector(Connector):
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
        page = response_json(response)
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


# --- plain values → Notion property values ---------------------------------------------------


# --- what Notion's answer means --------------------------------------------------------------
