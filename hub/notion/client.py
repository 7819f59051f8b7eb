"""Read Notion: what a thin event points at (pages, database / data source schemas) and
database queries for rules' `notion.query` steps.

API: https://developers.notion.com/reference/retrieve-a-page,
https://developers.notion.com/reference/retrieve-a-database,
https://developers.notion.com/reference/retrieve-a-data-source,
https://developers.notion.com/reference/query-a-data-source; errors and limits:
https://developers.notion.com/reference/status-codes,
https://developers.notion.com/reference/request-limits (about 3 requests/s, 429 with
`Retry-After`).

httpx directly rather than notion-client: notion-client retries 429/5xx itself with
`asyncio.sleep`, while here the worker's delivery policy owns retries and time goes
through `Clock`. This module never sleeps or loops; it says what happened:

    NotionFetchError
    ├── RetryableFetchError   429, 409, 5xx, network: try again (after `after_s` if known)
    └── PermanentFetchError   400, 401, 403, 404, bad id: retrying will not help
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from connectors.base import parse_retry_after, replace_lone_surrogates
from hub.clock import Clock
from hub.errors import SwitchboardError
from hub.notion.properties import property_names
from hub.secrets import Secret

__all__ = [
    "NOTION_API",
    "HttpPageFetcher",
    "NotionFetchError",
    "PageFetcher",
    "PermanentFetchError",
    "RetryableFetchError",
]

NOTION_API = "https://api.notion.com"
#: The version that has data sources; database objects then list them instead of properties.
DEFAULT_NOTION_VERSION = "2025-09-03"
_ID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)


class NotionFetchError(SwitchboardError):
    """A Notion API read failed; `status` is 0 when no response came back."""

    def __init__(self, message: str, *, status: int = 0, code: str = "") -> None:
        self.message = message
        self.status = status
        self.code = code
        super().__init__(message)


class RetryableFetchError(NotionFetchError):
    """Worth retrying; `after_s` is Notion's `Retry-After` when it sent one."""

    def __init__(
        self, message: str, *, status: int = 0, code: str = "", after_s: float | None = None
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.after_s = after_s


class PermanentFetchError(NotionFetchError):
    """Retrying will not help: bad token, no access, no such object."""


class PageFetcher(Protocol):
    """What the worker needs from Notion to enrich a thin event."""

    async def fetch_page(self, page_id: str) -> dict[str, Any]: ...

    async def fetch_database(self, database_id: str) -> dict[str, Any]: ...

    async def fetch_data_source(self, data_source_id: str) -> dict[str, Any]: ...

    async def fetch_property_names(
        self, *, database_id: str | None = None, data_source_id: str | None = None
    ) -> dict[str, str]: ...


class HttpPageFetcher:
    """PageFetcher over the Notion REST API with an injected httpx client."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token: Secret,
        clock: Clock,
        *,
        base_url: str = NOTION_API,
        notion_version: str = DEFAULT_NOTION_VERSION,
    ) -> None:
        self._http = http
        self._token = token
        self._clock = clock
        self._base_url = base_url.rstrip("/")
        self._version = notion_version

    async def fetch_page(self, page_id: str) -> dict[str, Any]:
        return await self._get("pages", page_id)

    async def fetch_database(self, database_id: str) -> dict[str, Any]:
        return await self._get("databases", database_id)

    async def fetch_data_source(self, data_source_id: str) -> dict[str, Any]:
        # Data sources exist from 2025-09-03 on, whatever version the rest uses.
        return await self._get("data_sources", data_source_id, version="2025-09-03")

    async def fetch_property_names(
        self, *, database_id: str | None = None, data_source_id: str | None = None
    ) -> dict[str, str]:
        """Property id → name, from the data source, else the database's schema."""
        if data_source_id:
            return property_names(await self.fetch_data_source(data_source_id))
        if not database_id:
            raise PermanentFetchError("no database or data source id to read a schema from")
        database = await self.fetch_database(database_id)
        if isinstance(database.get("properties"), Mapping):
            return property_names(database)
        # From 2025-09-03 a database lists its data sources; the schema lives there.
        sources = database.get("data_sources")
        first = sources[0] if isinstance(sources, list) and sources else None
        source_id = first.get("id") if isinstance(first, Mapping) else None
        if not isinstance(source_id, str):
            return {}
        return property_names(await self.fetch_data_source(source_id))

    async def query_database(self, database_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One page of a database query (API versions before data sources)."""
        return await self._send("POST", "databases", database_id, suffix="/query", body=body)

    async def query_data_source(
        self, data_source_id: str, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """One page of a data source query (2025-09-03 and later)."""
        return await self._send(
            "POST",
            "data_sources",
            data_source_id,
            suffix="/query",
            body=body,
            version="2025-09-03",
        )

    async def _get(
        self, kind: str, object_id: str, *, version: str | None = None
    ) -> dict[str, Any]:
        return await self._send("GET", kind, object_id, version=version)

    async def _send(
        self,
        method: str,
        kind: str,
        object_id: str,
        *,
        suffix: str = "",
        body: Mapping[str, Any] | None = None,
        version: str | None = None,
    ) -> dict[str, Any]:
        if not _ID.match(object_id):
            raise PermanentFetchError(f"{object_id[:60]!r} is not a Notion id", code="bad_id")
        path = f"/v1/{kind}/{object_id}{suffix}"
        what = f"{method} {path}"
        try:
            response = await self._http.request(
                method,
                self._base_url + path,
                headers={
                    "Authorization": f"Bearer {self._token.reveal()}",
                    "Notion-Version": version or self._version,
                },
                json=body,
            )
        except httpx.TimeoutException as exc:
            raise RetryableFetchError(f"{what}: timed out", code="timeout") from exc
        except httpx.TransportError as exc:
            raise RetryableFetchError(f"{what}: {type(exc).__name__}", code="network") from exc
        return self._read(what, response)

    def _read(self, path: str, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        body = _json_or_none(response)
        if 200 <= status < 300:
            if isinstance(body, dict):
                return body
            raise RetryableFetchError(
                f"{path}: {status} without a JSON object", status=status, code="bad_body"
            )
        error = body if isinstance(body, Mapping) else {}
        code = str(error.get("code") or f"http_{status}")
        message = f"{path}: {status} {code}: {str(error.get('message') or '')[:300]}"
        if status == 429 or status == 409 or status >= 500:
            after = parse_retry_after(response.headers.get("retry-after"), now=self._clock.now())
            raise RetryableFetchError(message, status=status, code=code, after_s=after)
        raise PermanentFetchError(message, status=status, code=code)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return replace_lone_surrogates(response.json())
    except ValueError:
        return None
