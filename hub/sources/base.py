"""The source plugin API: verify an inbound webhook, then normalize it into events.

`verify` and `delivery_id` run in ingress and must not touch the network; `normalize`
runs in the worker and is pure (API enrichment goes through clients on the context).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

from hub.clock import Clock
from hub.events import Event
from hub.secrets import Secret

__all__ = ["HookRequest", "NormalizeContext", "RawEvent", "Source", "Verdict"]


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

    `store` is False for protocol traffic answered directly (handshakes);
    `reply` is then the JSON body to send with `status`. The stored form of an
    accepted request is its raw body, which the worker parses again.
    """

    delivery_id: str
    store: bool = True
    status: int = 202
    reply: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RawEvent:
    """A stored inbound webhook, as the worker reads it back: the verified bytes as sent."""

    id: str
    source: str
    delivery_id: str
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
    event_types: ClassVar[tuple[str, ...]]

    def verify(self, request: HookRequest, secret: Secret | None, clock: Clock) -> Verdict:
        """Check the signature and parse the body; raise a RequestRejected subclass."""
        ...

    def normalize(self, raw: RawEvent, ctx: NormalizeContext) -> list[Event]: ...
