"""Notion API plumbing: workspace, schema and target records, ids, caches, error classes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from connectors.base import (
    DeliveryContext,
    Destination,
    SendResult,
    classify_status,
    fail,
    ok,
    parse_retry_after,
    response_json,
    retry,
    secret_option,
)

DEFAULT_API_URL = "https://api.notion.com"
DEFAULT_NOTION_VERSION = "2025-09-03"

_ID = re.compile(r"[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}")
K = TypeVar("K")
V = TypeVar("V")
_NOTION_URL = re.compile(r"https?://(?:www\.)?[\w.-]*notion\.(?:so|site)/[^\s?#)\]>\"']*")


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


def classify_notion(
    response: httpx.Response, ctx: DeliveryContext, ws: Workspace, *, doing: str
) -> SendResult:
    """Map Notion's answer to ok(object id) / retry(after) / fail(reason)."""
    status = response.status_code
    data = response_json(response)
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
    data = response_json(response)
    return data if isinstance(data, Mapping) else {}
