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
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, ClassVar

from connectors.base import SECRET_REF_SCHEMA, parse_duration, shared_budget_key
from hub.clock import Clock
from hub.errors import RequestRejected, SignatureError
from hub.events import Actor, Entity, Event, event_id_for
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
    notice_fields,
    parse_notice,
    verification_token_of,
)
from hub.notion.query import plan_query, run_query
from hub.notion.task_index import DuplicateSettings, TaskIndex, read_database
from hub.secrets import Secret
from hub.sources._http import check_hmac_sha256, parse_json_object
from hub.sources._values import source_path, type_word
from hub.sources.base import (
    EnrichContext,
    HookRequest,
    NormalizeContext,
    QueryFailed,
    RawEvent,
    RetryLater,
    Verdict,
)

__all__ = ["NotionSource", "event_from_notice", "handshake_verdict", "verification_token_of"]

log = logging.getLogger("switchboard.sources.notion")

SIGNATURE_HEADER = "X-Notion-Signature"
#: Notion's documented average: 3 requests per second per integration.
NOTION_BUDGET: tuple[tuple[int, float], ...] = ((3, 1.0),)
#: Verbs that say what happened to the page as a whole; they win over edits in a burst.
_LIFECYCLE = ("created", "deleted", "undeleted", "moved")

#: The JSON answer to the handshake; the token itself is never echoed.
HANDSHAKE_REPLY: Mapping[str, Any] = MappingProxyType(
    {
        "ok": True,
        "message": "verification token received; the admin can see it in Switchboard and "
        "must paste it into Notion's Verify dialog, then configure it as the notion secret",
    }
)


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


class NotionSource:
    """Verifies Notion webhook deliveries and turns them into thin `notion.<entity>.<verb>`."""

    name: ClassVar[str] = "notion"
    settings_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "databases": {
                "type": "object",
                "description": "Database or data source id → what its pages are, e.g. "
                "{kind: task}; becomes `entity.kind` (default: page).",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["kind"],
                    "properties": {"kind": {"type": "string", "minLength": 1}},
                },
                "examples": [{"8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80": {"kind": "task"}}],
            },
            "coalesce_window": {
                "type": ["string", "number"],
                "description": "Events on one page this close together become one event.",
                "default": "5s",
                "examples": ["5s"],
            },
            "api_token": {
                **SECRET_REF_SCHEMA,
                "description": "The integration's Internal Integration Secret, used by the "
                "worker to fetch the pages events point at.",
                "examples": [{"env": "SWITCHBOARD_NOTION_TOKEN"}],
            },
            "api_url": {
                "type": "string",
                "description": "Notion API base URL (for a proxy or a test double).",
                "default": "https://api.notion.com",
                "examples": ["https://api.notion.com"],
            },
            "notion_version": {
                "type": "string",
                "pattern": "^\\d{4}-\\d{2}-\\d{2}$",
                "description": "Notion-Version header for API reads.",
                "default": "2025-09-03",
                "examples": ["2025-09-03"],
            },
            "workspaces": {
                "type": "object",
                "description": "Several Notion workspaces, by workspace id: each with its own "
                "integration token, verification token and databases. Events carry "
                "`notion/workspace/<id>` as their source, for `source:` in rules.",
                "additionalProperties": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "api_token": SECRET_REF_SCHEMA,
                        "verification_token": SECRET_REF_SCHEMA,
                        "api_url": {"type": "string"},
                        "databases": {
                            "type": "object",
                            "additionalProperties": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["kind"],
                                "properties": {"kind": {"type": "string", "minLength": 1}},
                            },
                        },
                    },
                },
                "examples": [
                    {
                        "7b1e4f52-3c2a-4d8e-9f10-2a6c5e8d9b01": {
                            "api_token": {"env": "NOTION_TOKEN_ACME"},
                            "verification_token": {"env": "NOTION_VERIFY_ACME"},
                        }
                    }
                ],
            },
            "duplicates": {
                "type": "object",
                "additionalProperties": False,
                "description": "Duplicate-task detection: a page created in one of `databases` "
                "is compared with that database's open tasks and its event carries "
                "`data.duplicates` (docs/rules.md).",
                "properties": {
                    "threshold": {
                        "type": "number",
                        "minimum": 0,
                        "maximum": 1,
                        "default": 0.6,
                        "description": "Score from which a task is reported as a duplicate.",
                        "examples": [0.6],
                    },
                    "limit": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 20,
                        "default": 3,
                        "description": "Duplicates reported per new task, best first.",
                        "examples": [3],
                    },
                    "refresh": {
                        "type": ["string", "number"],
                        "default": "1h",
                        "description": "Read the whole database again when the stored index "
                        "is older than this (events keep it current in between).",
                        "examples": ["1h"],
                    },
                    "closed": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Status values of tasks that are no longer open.",
                        "examples": [["Done", "Cancelled"]],
                    },
                    "status_property": {"type": "string", "examples": ["Status"]},
                    "description_property": {
                        "type": "string",
                        "description": "Text property compared besides the title "
                        "(default: Description, Notes or Summary, the first present).",
                        "examples": ["Notes"],
                    },
                    "assignee_property": {"type": "string", "examples": ["Assignee"]},
                    "project_property": {"type": "string", "examples": ["Project"]},
                    "max_tasks": {
                        "type": "integer",
                        "minimum": 100,
                        "maximum": 10000,
                        "default": 1000,
                        "description": "Tasks read per refresh at most (100 per request).",
                        "examples": [1000],
                    },
                },
                "examples": [{"threshold": 0.6, "refresh": "1h", "closed": ["Done"]}],
            },
            "max_age": {
                "type": ["string", "number"],
                "description": "Refuse signed events whose timestamp is older than this "
                "(Notion retries for about 24 hours; unset = no limit).",
                "examples": ["48h"],
            },
        },
    }
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
        return Verdict(delivery_id=notice.id, status=200)

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


def _merge_burst(events: Sequence[Event]) -> Event:
    """One event for a burst on one page: the first id, the deciding verb, and every
    property, block and author any of them named (in first-seen order)."""
    first, last = events[0], events[-1]
    verbs = [e.type for e in events if e.type.rsplit(".", 1)[-1] in _LIFECYCLE]
    notion = dict(first.fields.get("notion") or {})
    for key in ("updated_properties", "updated_blocks", "authors"):
        merged: list[Any] = []
        for event in events:
            for item in (event.fields.get("notion") or {}).get(key) or []:
                if item not in merged:
                    merged.append(item)
        notion[key] = merged
    notion["coalesced_events"] = [e.id for e in events]
    return dataclasses.replace(
        first,
        type=verbs[-1] if verbs else last.type,
        time=last.time,
        fields={**first.fields, "notion": notion},
    )


#: Unsigned handshakes accepted per source (and process) in HANDSHAKE_WINDOW_S seconds.
HANDSHAKES_PER_WINDOW = 5
HANDSHAKE_WINDOW_S = 60.0


class TooManyHandshakes(RequestRejected):
    """Too many unsigned handshakes lately; this one is neither answered 200 nor kept."""

    status = 429
    code = "too_many_handshakes"


def handshake_verdict(token: str) -> Verdict:
    """Answer the handshake 200 without storing it; the id names the token, not reveals it."""
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    return Verdict(
        delivery_id=f"verification-{digest}",
        store=False,
        status=200,
        reply=HANDSHAKE_REPLY,
        admin_notice=(
            f"Notion subscription handshake: verification token {token} — unproven (anyone "
            "can send a handshake) until Notion's own Verify dialog accepts it; then set it "
            "as the notion source's secret (SWITCHBOARD_SECRET_NOTION)"
        ),
    )


def event_from_notice(
    notice: NotionNotice, *, received_at: datetime, kinds: Mapping[str, str] | None = None
) -> Event:
    """The thin event: ids, authors and updated property ids, no property values.

    Also used for a coalesced burst (hub/notion/diff.py): its notice keeps the first
    delivery's id, so the event id is the one that delivery would have had.
    """
    kinds = kinds or {}
    kind = notice.entity_type
    if notice.entity_type == "page":
        kind = next(
            (kinds[i] for i in (notice.data_source_id, notice.parent_id) if i and i in kinds),
            "page",
        )
    author = notice.authors[0] if notice.authors else None
    return Event(
        id=event_id_for("notion", notice.id),
        source=source_path("notion/workspace", notice.workspace_id)
        if notice.workspace_id
        else "notion",
        type=f"notion.{_slug(notice.type)}",
        subject=f"{_slug(notice.entity_type)}/{notice.entity_id}",
        time=notice.timestamp or received_at,
        entity=Entity(kind=kind, id=notice.entity_id, url=_url(notice)),
        actor=Actor(id=author.id if author else None),
        fields={"notion": notice_fields(notice)},
        raw=dict(notice.raw),
    )


def _url(notice: NotionNotice) -> str | None:
    """notion.so/<id without dashes> opens a page or database (and a comment's page)."""
    if notice.entity_type in ("page", "database"):
        target: str | None = notice.entity_id
    elif notice.entity_type == "comment":
        target = notice.page_id
    else:
        target = None
    return f"https://www.notion.so/{target.replace('-', '')}" if target else None


def _slug(text: str) -> str:
    """Dot-separated lower-case ASCII words, as the event type pattern allows."""
    words = (type_word(w, default="") for w in text.split("."))
    return ".".join(w for w in words if w) or "unknown"
