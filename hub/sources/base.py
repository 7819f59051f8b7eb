"""The source plugin API: verify an inbound webhook, then normalize it into events.

`verify` runs in ingress and must not touch the network; `normalize` runs in the worker
and is pure (API enrichment goes through clients on the context).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeGuard, runtime_checkable

import httpx

from connectors.base import CliCommand
from hub.clock import Clock
from hub.errors import SwitchboardError
from hub.events import Event
from hub.secrets import Secret

__all__ = [
    "CannotSign",
    "EnrichContext",
    "EnrichingSource",
    "HookRequest",
    "NormalizeContext",
    "QueryFailed",
    "QueryingSource",
    "RawEvent",
    "RetryLater",
    "SharedState",
    "SnapshotStore",
    "Source",
    "Verdict",
    "has_upkeep",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class HookRequest:
    """An inbound webhook after the size-capped body read; header names are lower case."""

    source: str
    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)
    received_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """What ingress does with a verified request.

    `provider_delivery_id` is the provider's id of this request (GitHub's
    `X-GitHub-Delivery`, Notion's event id; made up from the request where the provider
    sends none): ingress de-duplicates on it. It is not a delivery row's id, which is ours
    (hub/store/deliveries.py). `store` is False for protocol traffic answered directly
    (handshakes). `reply`, when set, is the JSON body sent with `status` instead of
    `{"id": ...}`: for a handshake, or for a stored request whose provider wants its own
    acknowledgement (chat commands). The stored form of an accepted request is its raw
    body, which the worker parses again.
    """

    provider_delivery_id: str
    store: bool = True
    status: int = 202
    reply: Mapping[str, Any] | None = None
    #: Something the admin must act on (Notion's verification token to paste back);
    #: ingress logs it.
    admin_notice: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RawEvent:
    """A stored inbound webhook (an "inbound", before normalization into `Event`s), as the
    worker reads it back: the verified bytes as sent."""

    id: str
    source: str
    provider_delivery_id: str
    headers: Mapping[str, str]
    body: bytes
    received_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class NormalizeContext:
    """What a normalizer may use; API clients for enrichment are added per source."""

    clock: Clock


@runtime_checkable
class Source(Protocol):
    """A webhook source, registered under the `switchboard.sources` entry point."""

    name: ClassVar[str]
    settings_schema: ClassVar[dict[str, Any]]
    #: Event types this source can emit (globs allowed), for rule reachability checks.
    event_types: ClassVar[tuple[str, ...]] = ()
    #: Its bodies carry short-lived credentials (a chat command's follow-up token): with
    #: `store.encryption_keys` ingress stores them sealed, and they are opened to normalize.
    holds_credentials: ClassVar[bool] = False

    def verify(self, request: HookRequest, secret: Secret | None, clock: Clock) -> Verdict:
        """Check the signature and parse the body; raise a RequestRejected subclass."""
        ...

    def normalize(self, raw: RawEvent, ctx: NormalizeContext) -> list[Event]: ...

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Source:
        """The source built from its validated `sources.<name>` options; by default it
        takes none."""
        return cls()

    async def maintain(self, ctx: EnrichContext, secret: Secret | None) -> list[RawEvent]:
        """Periodic upkeep (renew a push channel, catch up on missed changes); the raw
        events it returns are received as if they came in as webhooks. None by default
        (`has_upkeep` tells), and the scheduler then skips the source."""
        return []

    def sign(self, body: bytes, secret: str, *, now: datetime) -> dict[str, str]:
        """The headers that make `body` pass `verify` with this secret (`switchboard sign`,
        tests of a deployment). Raise CannotSign when the source cannot sign."""
        raise CannotSign(f"the {self.name} source does not sign requests")

    @classmethod
    def cli_commands(cls) -> Sequence[CliCommand]:
        """`switchboard` commands this source adds (provider helpers); none by default."""
        return ()


def has_upkeep(source: Source) -> bool:
    """Whether the source declares upkeep of its own (overrides `maintain`)."""
    return type(source).maintain is not Source.maintain


class CannotSign(SwitchboardError):
    """A source whose requests cannot be signed here (the provider holds the key)."""


class SnapshotStore(Protocol):
    """The last state a source saw of an entity, by key, for computing `changes`."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, doc: dict[str, Any], *, version: str | None, now: float) -> bool:
        """Store unless a newer `version` is stored; True when written."""
        ...


class SharedState(Protocol):
    """State several processes change at once (upkeep in every scheduler): documents
    edited atomically, and leases so that only one of them does a piece of work."""

    def update(
        self,
        key: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any]],
        *,
        now: float,
    ) -> dict[str, Any]:
        """Write `change(stored doc)` in one atomic step; the written doc."""
        ...

    def lease(self, key: str, *, holder: str, now: float, ttl_s: float) -> bool:
        """Take the lease `key` for `ttl_s` unless another holder has it; True when taken."""
        ...

    def release(self, key: str, *, holder: str, now: float) -> None:
        """Give the lease up early (it also lapses by itself)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class EnrichContext:
    """What a source may use to complete thin events in the worker (never in ingress)."""

    clock: Clock
    #: The worker's shared HTTP client (timeouts and pool set once).
    http: httpx.AsyncClient
    snapshots: SnapshotStore
    #: `await throttle(key, [(count, per_s), ...])` returns once a request may be made:
    #: one budget per key shared by every worker process (Notion: 3/s per integration).
    throttle: Callable[[str, Sequence[tuple[int, float]]], Awaitable[None]]
    #: Upkeep and admin commands only (hub/schedule/upkeep.py); None in the worker.
    shared: SharedState | None = None


class RetryLater(Exception):
    """Enrichment could not finish now (the provider is rate limiting or down)."""

    def __init__(self, reason: str, *, after_s: float | None = None) -> None:
        super().__init__(reason)
        self.after_s = after_s


@runtime_checkable
class EnrichingSource(Source, Protocol):
    """A source whose events are thin (ids only) and are completed by fetching.

    Events with the same `coalesce_key` arriving within `coalesce_window_s` are enriched
    together, once: a burst of edits to one Notion page is one fetch and one event.
    """

    coalesce_window_s: float

    def coalesce_key(self, event: Event) -> str | None:
        """Events with the same key are enriched together; None: enrich at once."""
        ...

    async def enrich(self, events: Sequence[Event], ctx: EnrichContext) -> list[Event]:
        """The complete events for these (thin, same-key) ones; [] when nothing changed.

        Raise RetryLater when the provider cannot answer now.
        """
        ...


_ENRICHES: dict[type, bool] = {}


def enriches(source: Source) -> TypeGuard[EnrichingSource]:
    """`isinstance(source, EnrichingSource)`, asked once per source class.

    A runtime-checkable protocol's isinstance walks its members on every call: 3% of a
    worker's CPU when it was asked for every event.
    """
    kind = type(source)
    known = _ENRICHES.get(kind)
    if known is None:
        known = _ENRICHES[kind] = isinstance(source, EnrichingSource)
    return known


class QueryFailed(SwitchboardError):
    """A rule's query step cannot succeed as written (bad filter, no access, no source)."""


@runtime_checkable
class QueryingSource(Source, Protocol):
    """A source rules can read from: `<source name>.query` steps (summaries, commands)."""

    async def query(self, params: Mapping[str, Any], ctx: EnrichContext) -> list[dict[str, Any]]:
        """The rendered step's results as plain values.

        Raise RetryLater when the provider cannot answer now, QueryFailed when the step
        itself is wrong.
        """
        ...
