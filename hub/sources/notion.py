"""Notion integration webhooks: the subscription handshake, signed thin events.

Docs: https://developers.notion.com/reference/webhooks and
https://developers.notion.com/reference/webhooks-events-delivery
Handshake: a new subscription first POSTs `{"verification_token": "secret_..."}`, unsigned.
It is answered 200 and not stored; ingress hands the token to the admin
(`verification_token_of`), who pastes it back into Notion and configures it as this
source's secret. Signature: `X-Notion-Signature: sha256=HMAC_SHA256(token, raw body)`.
Delivery id: the event's `id`, which Notion keeps across retries (`attempt_number` 1-8).
Events carry ids, not values: `normalize` is thin, and the worker fetches the page and
fills in fields and changes (hub/notion/enrich.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from connectors.base import parse_duration, shared_budget_key
from hub.clock import Clock
from hub.errors import SignatureError
from hub.events import Event
from hub.notion.client import (
    DEFAULT_NOTION_VERSION,
    NOTION_API,
    HttpPageFetcher,
    PermanentFetchError,
    RetryableFetchError,
)
from hub.notion.enrich import enrich_page_event, page_parent_ids
from hub.notion.notices import (
    NotionNotice,
    is_handshake,
    parse_notice,
    verification_token_of,
)
from hub.notion.query import plan_query, run_query
from hub.notion.task_index import DuplicateSettings, TaskIndex, read_database
from hub.secrets import Secret
from hub.sources._http import check_hmac_sha256, parse_json_object
from hub.sources._notion_events import (
    HANDSHAKE_WINDOW_S,
    HANDSHAKES_PER_WINDOW,
    TooManyHandshakes,
    _merge_burst,
    event_from_notice,
    handshake_verdict,
)
from hub.sources._notion_settings import SETTINGS_SCHEMA
from hub.sources.base import (
    EnrichContext,
    HookRequest,
    NormalizeContext,
    QueryFailed,
    RawEvent,
    RetryLater,
    Source,
    Verdict,
)

__all__ = ["NotionSource"]

log = logging.getLogger("switchboard.sources.notion")

SIGNATURE_HEADER = "X-Notion-Signature"
#: Notion's documented average: 3 requests per second per integration.
NOTION_BUDGET: tuple[tuple[int, float], ...] = ((3, 1.0),)


_PAGE_VERBS = (
    "created",
    "properties_updated",
    "content_updated",
    "moved",
    "deleted",
    "undeleted",
    "locked",
    "unlocked",
)
_DATABASE_VERBS = ("created", "content_updated", "schema_updated", "moved", "deleted", "undeleted")


class NotionSource(Source):
    """Verifies Notion webhook deliveries and turns them into thin `notion.<entity>.<verb>`."""

    name: ClassVar[str] = "notion"
    settings_schema: ClassVar[dict[str, Any]] = SETTINGS_SCHEMA
    #: https://developers.notion.com/reference/webhooks-events-delivery, one by one so a
    #: typo in `on:` is a warning (`database.content_updated`: API versions before 2025-09-03).
    event_types: ClassVar[tuple[str, ...]] = tuple(
        f"notion.{entity}.{verb}"
        for entity, verbs in (
            ("page", _PAGE_VERBS),
            ("database", _DATABASE_VERBS),
            ("data_source", _DATABASE_VERBS),
            ("comment", ("created", "updated", "deleted")),
            ("file_upload", ("created", "completed", "expired", "upload_failed")),
        )
        for verb in verbs
    )

    def __init__(
        self,
        *,
        kinds: Mapping[str, str] | None = None,
        max_age: timedelta | None = None,
        api_token: Secret | None = None,
        api_url: str = NOTION_API,
        notion_version: str = DEFAULT_NOTION_VERSION,
        coalesce_window_s: float = 2.0,
        workspaces: Mapping[str, Workspace] | None = None,
        duplicates: DuplicateSettings | None = None,
    ) -> None:
        self._kinds = dict(kinds or {})
        self._workspaces = dict(workspaces or {})
        for workspace in self._workspaces.values():
            self._kinds.update(workspace.kinds)  # database ids are unique across workspaces
        self._max_age = max_age
        self._token = api_token
        self._api_url = api_url
        self._version = notion_version
        #: Edits to one page this close together are fetched once and become one event.
        self.coalesce_window_s = coalesce_window_s
        self._names: dict[str, dict[str, str]] = {}  # database id -> property id -> name
        self._names_locks: dict[str, asyncio.Lock] = {}
        self._handshakes: deque[float] = deque()  # monotonic times of unsigned handshakes
        #: Open tasks of the `databases`, for `data.duplicates` on created pages.
        self._tasks = TaskIndex(duplicates) if duplicates is not None else None

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> NotionSource:
        """Build from `sources.notion` in switchboard.yaml (validated by settings_schema)."""
        databases = options.get("databases") or {}
        token = options.get("api_token")
        workspaces = {
            workspace_id: Workspace(
                api_token=_secret(spec.get("api_token")),
                verification_token=_secret(spec.get("verification_token")),
                api_url=spec.get("api_url"),
                kinds={db: str(d["kind"]) for db, d in (spec.get("databases") or {}).items()},
            )
            for workspace_id, spec in (options.get("workspaces") or {}).items()
        }
        return cls(
            workspaces=workspaces,
            kinds={db: str(spec["kind"]) for db, spec in databases.items()},
            max_age=parse_duration(options["max_age"]) if "max_age" in options else None,
            api_token=token if isinstance(token, Secret) else None,
            api_url=str(options.get("api_url", NOTION_API)),
            notion_version=str(options.get("notion_version", DEFAULT_NOTION_VERSION)),
            coalesce_window_s=parse_duration(options.get("coalesce_window", "2s")).total_seconds(),
            duplicates=DuplicateSettings.from_options(
                dup, parse_duration(dup.get("refresh", "1h")).total_seconds()
            )
            if isinstance(dup := options.get("duplicates"), Mapping)
            else None,
        )

    def sign(self, body: bytes, secret: str, *, now: datetime) -> dict[str, str]:
        """Notion's HMAC-SHA256 of the body with the verification token."""
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {SIGNATURE_HEADER: f"sha256={digest}"}

    def verify(self, request: HookRequest, secret: Secret | None, clock: Clock) -> Verdict:
        signature = request.headers.get(SIGNATURE_HEADER.lower(), "").strip()
        if not signature:
            # Only the handshake comes unsigned; anything else is refused before parsing.
            token = verification_token_of(request.body)
            if token is None:
                raise SignatureError(f"missing {SIGNATURE_HEADER} header")
            self._count_handshake(clock.monotonic())
            return handshake_verdict(token)
        signer = self._signer(request.body, signature, secret)
        payload = parse_json_object(request.body)
        if is_handshake(payload):
            return handshake_verdict(str(payload["verification_token"]))
        notice = parse_notice(payload)
        own = self._workspaces.get(notice.workspace_id or "")
        if own is not None and own.verification_token is not None and signer != notice.workspace_id:
            # Each workspace signs with its own token: one cannot speak for another.
            raise SignatureError(
                f"{SIGNATURE_HEADER} was not made with workspace {notice.workspace_id}'s "
                "verification token"
            )
        self._check_age(notice, clock.now())
        # 200 rather than 202: Notion's delivery docs speak of a 200 (DESIGN §1).
        return Verdict(provider_delivery_id=notice.id, status=200)

    def _count_handshake(self, now: float) -> None:
        """Anyone can send an unsigned handshake: past a few a minute, 429 and not kept, so
        a flood cannot bury the genuine token among the admin's pending ones."""
        while self._handshakes and self._handshakes[0] <= now - HANDSHAKE_WINDOW_S:
            self._handshakes.popleft()
        if len(self._handshakes) >= HANDSHAKES_PER_WINDOW:
            raise TooManyHandshakes(
                f"more than {HANDSHAKES_PER_WINDOW} unsigned handshakes in "
                f"{HANDSHAKE_WINDOW_S:.0f} s; try again in a minute"
            )
        self._handshakes.append(now)

    def _signer(self, body: bytes, signature: str, secret: Secret | None) -> str | None:
        """Which verification token signed the body: a workspace id, or None for the
        source's own secret; SignatureError when none did."""
        candidates: list[tuple[str | None, Secret]] = [] if secret is None else [(None, secret)]
        candidates += [
            (workspace_id, ws.verification_token)
            for workspace_id, ws in self._workspaces.items()
            if ws.verification_token is not None
        ]
        if not candidates:
            raise SignatureError(
                "no verification token is configured for source 'notion'; complete the "
                "subscription handshake and set it as sources.notion.secret"
            )
        last: SignatureError | None = None
        for owner, token in candidates:  # every one is tried: no early exit to time
            try:
                check_hmac_sha256(body, token.reveal().encode(), signature, header=SIGNATURE_HEADER)
            except SignatureError as exc:
                last = exc
            else:
                return owner
        assert last is not None  # noqa: S101 - at least one candidate was checked
        raise last

    def normalize(self, raw: RawEvent, ctx: NormalizeContext) -> list[Event]:
        payload = parse_json_object(raw.body)
        if is_handshake(payload):
            return []
        notice = parse_notice(payload)
        return [event_from_notice(notice, received_at=raw.received_at, kinds=self._kinds)]

    # --- enrichment in the worker ------------------------------------------------------

    def _access(self, event: Event) -> tuple[Secret, str, str] | None:
        """(token, API base, snapshot scope) for the event's workspace, if it can be read."""
        workspace_id = str((event.fields.get("notion") or {}).get("workspace_id") or "")
        workspace = self._workspaces.get(workspace_id)
        if workspace is not None and workspace.api_token is not None:
            return workspace.api_token, workspace.api_url or self._api_url, workspace_id
        if self._token is None:
            return None
        return self._token, self._api_url, workspace_id or "default"

    def coalesce_key(self, event: Event) -> str | None:
        """Page events are fetched per page; comments and databases pass through thin."""
        notion = event.fields.get("notion") or {}
        access = self._access(event)
        if notion.get("entity_type") != "page" or access is None:
            return None
        return f"{access[2]}:page:{event.entity.id}"  # a burst never spans workspaces

    async def enrich(self, events: Sequence[Event], ctx: EnrichContext) -> list[Event]:
        """One fetch for a burst on one page: the event with its fields and `changes`."""
        access = self._access(events[0]) if events else None
        if access is None or self.coalesce_key(events[0]) is None:
            return list(events)
        token, api_url, scope = access
        merged = _merge_burst(events)
        fetcher = HttpPageFetcher(
            ctx.http, token, ctx.clock, base_url=api_url, notion_version=self._version
        )
        budget = shared_budget_key("notion-api", token.reveal())
        try:
            await ctx.throttle(budget, NOTION_BUDGET)
            page = await fetcher.fetch_page(merged.entity.id)
        except RetryableFetchError as exc:
            raise RetryLater(f"Notion: {exc.message}", after_s=exc.after_s) from exc
        except PermanentFetchError as exc:
            # Gone or not shared with the integration: the thin event is all there is.
            if self._tasks is not None:
                await self._tasks.forget(
                    merged.entity.id,
                    sorted(self._kinds),
                    ctx.snapshots,
                    now=ctx.clock.now().timestamp(),
                )
            notion = {**merged.fields.get("notion", {}), "fetch_error": exc.message}
            return [dataclasses.replace(merged, fields={**merged.fields, "notion": notion})]
        try:
            names = await self._property_names(fetcher, page, ctx, budget)
        except RetryableFetchError as exc:
            raise RetryLater(f"Notion: {exc.message}", after_s=exc.after_s) from exc
        except PermanentFetchError as exc:
            # The page is readable but its database is not shared: only the names of the
            # updated property ids are missing, the page's fields and changes are whole.
            log.warning("Notion database of page %s: %s", merged.entity.id, exc.message)
            names = None
        key = f"notion:{scope}:page:{merged.entity.id}"  # workspaces never share snapshots
        previous = await asyncio.to_thread(ctx.snapshots.get, key)
        event, snapshot = enrich_page_event(
            merged,
            page,
            previous=previous.get("fields") if previous else None,
            kinds=self._kinds,
            names=names,
        )
        unchanged = previous is not None and not event.changes and merged.type.endswith("_updated")
        if not unchanged:
            # Before the snapshot is stored: a RetryLater here enriches again, same changes.
            event = await self._track_task(event, page, fetcher, ctx, budget)
        await asyncio.to_thread(
            ctx.snapshots.put,
            key,
            {"fields": dict(snapshot.fields)},
            version=snapshot.last_edited_time,
            now=ctx.clock.now().timestamp(),
        )
        if unchanged:
            return []  # edited and reverted within the window, or nothing we can see changed
        return [event]

    async def _track_task(
        self,
        event: Event,
        page: Mapping[str, Any],
        fetcher: HttpPageFetcher,
        ctx: EnrichContext,
        budget: str,
    ) -> Event:
        """Keep the database's open-task index current; a created task gets `duplicates`."""
        tasks = self._tasks
        database_id = next((i for i in page_parent_ids(page) if i in self._kinds), None)
        if tasks is None or database_id is None:
            return event

        async def read_all() -> list[dict[str, Any]]:
            return await read_database(
                fetcher,
                database_id,
                kinds=self._kinds,
                max_tasks=tasks.settings.max_tasks,
                wait_for_budget=lambda: ctx.throttle(budget, NOTION_BUDGET),
            )

        try:
            return await tasks.track(
                event,
                database_id,
                snapshots=ctx.snapshots,
                now=ctx.clock.now().timestamp(),
                read_all=read_all,
            )
        except RetryableFetchError as exc:
            raise RetryLater(f"Notion: {exc.message}", after_s=exc.after_s) from exc
        except PermanentFetchError as exc:
            log.warning("Notion database %s: cannot read its tasks: %s", database_id, exc.message)
            return event

    async def query(self, params: Mapping[str, Any], ctx: EnrichContext) -> list[dict[str, Any]]:
        """A `notion.query` step: a database's pages, flattened like event fields."""
        try:
            plan = plan_query(params, self._kinds)
        except ValueError as exc:
            raise QueryFailed(f"notion.query: {exc}") from exc
        token, api_url = self._query_access(params.get("workspace"), plan.database_id)
        fetcher = HttpPageFetcher(
            ctx.http, token, ctx.clock, base_url=api_url, notion_version=self._version
        )
        budget = shared_budget_key("notion-api", token.reveal())
        try:
            return await run_query(
                fetcher,
                plan,
                kinds=self._kinds,
                wait_for_budget=lambda: ctx.throttle(budget, NOTION_BUDGET),
            )
        except RetryableFetchError as exc:
            raise RetryLater(f"Notion: {exc.message}", after_s=exc.after_s) from exc
        except PermanentFetchError as exc:
            raise QueryFailed(f"notion.query: {exc.message}") from exc

    def _query_access(self, workspace_id: object, database_id: str | None) -> tuple[Secret, str]:
        """The token that may read the database: the named workspace's, the workspace
        whose `databases` list it, else the source's own `api_token`."""
        workspace = self._workspaces.get(str(workspace_id)) if workspace_id else None
        if workspace_id and workspace is None:
            raise QueryFailed(f"notion.query: workspace '{workspace_id}' is not configured")
        if workspace is None and database_id is not None:
            workspace = next(
                (ws for ws in self._workspaces.values() if database_id in ws.kinds), None
            )
        if workspace is not None and workspace.api_token is not None:
            return workspace.api_token, workspace.api_url or self._api_url
        if self._token is None:
            raise QueryFailed(
                "notion.query: no Notion API token is configured; set sources.notion.api_token"
            )
        return self._token, self._api_url

    async def _property_names(
        self, fetcher: HttpPageFetcher, page: Mapping[str, Any], ctx: EnrichContext, budget: str
    ) -> dict[str, str] | None:
        """Property id -> name of the page's database, fetched once per worker."""
        parents = page_parent_ids(page)
        if not parents:
            return None
        # Enrichment runs on the worker's one event loop: the lock makes concurrent bursts
        # of one database wait for a single schema read instead of each spending budget.
        lock = self._names_locks.setdefault(parents[0], asyncio.Lock())
        async with lock:
            cached = self._names.get(parents[0])
            if cached is None:
                await ctx.throttle(budget, NOTION_BUDGET)
                parent = page.get("parent") or {}
                cached = await fetcher.fetch_property_names(
                    database_id=parent.get("database_id"),
                    data_source_id=parent.get("data_source_id"),
                )
                self._names[parents[0]] = cached
        return cached

    def _check_age(self, notice: NotionNotice, now: datetime) -> None:
        if self._max_age is None or notice.timestamp is None:
            return
        if now - notice.timestamp > self._max_age:
            raise SignatureError(
                f"Notion event {notice.id} is from {notice.timestamp.isoformat()}, older than "
                f"the {self._max_age} replay window",
                code="stale_request",
            )


@dataclass(frozen=True, slots=True)
class Workspace:
    """One Notion workspace's credentials and database kinds."""

    api_token: Secret | None = None
    verification_token: Secret | None = None
    api_url: str | None = None
    kinds: Mapping[str, str] = field(default_factory=dict)


def _secret(value: object) -> Secret | None:
    return value if isinstance(value, Secret) else None
