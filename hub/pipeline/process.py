"""Process one accepted webhook: normalize, match rules, plan deliveries (outbox rows).

Also flushes `group` windows. Everything here is idempotent: deliveries are unique on
their idempotency key, window counts on (rule, event), group members on (rule, event),
so a message processed twice after a crash plans nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from connectors.base import Destination
from hub.clock import Clock
from hub.events import Event, event_from_dict
from hub.logging import bound
from hub.pipeline.plan import _admitted, _render, _render_key, _with_connectors, plan_delivery
from hub.pipeline.queries import QueryRun
from hub.rules import RuleSet, match_rules
from hub.rules.categories import Categories, categorize
from hub.sources.base import (
    EnrichingSource,
    NormalizeContext,
    RawEvent,
    RetryLater,
    Source,
    enriches,
)
from hub.store import InboundRow, NewDelivery, Store, batches, windows

log = logging.getLogger("switchboard.processing")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessOutcome:
    event_id: str
    #: (delivery id, connector) of deliveries ready to send now.
    pending: list[tuple[str, str]]
    matched_rules: list[str]
    #: Groups opened (or filled) by this event: (group id, flush time as epoch seconds).
    groups: list[tuple[str, float]] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    error: str | None = None


#: Runs an enriching source's `enrich` on the worker's event loop; None: events stay thin.
Enrich = Callable[[EnrichingSource, list[Event]], list[Event]]
#: A source-level coalescing window is stored as a group under this rule id prefix.
SOURCE_GROUP_PREFIX = "@source:"
#: A burst keeps its window open while events keep coming, up to this many windows.
COALESCE_MAX_WAIT_FACTOR = 5
#: When a provider gives no Retry-After, enrichment is tried again after this long.
ENRICH_RETRY_S = 5.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FlushOutcome:
    #: (delivery id, connector) ready to send now.
    pending: list[tuple[str, str]]
    #: Set when the flush must run again later (a source's provider asked to wait).
    retry_in_s: float | None = None
    #: Groups opened by events a source flush produced (their own rule windows).
    groups: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class _Routed:
    planned: list[NewDelivery] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    opened: list[tuple[str, float]] = field(default_factory=list)
    stored: list[dict[str, Any]] = field(default_factory=list)


#: Runs one store write in a transaction: the worker's writer thread, or directly.
RunWrite = Callable[[Callable[[batches.Transaction], Any], str], Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchOutcome:
    """What processing a batch of events planned."""

    #: One per event processed now (claimed and finished) in this batch.
    events: list[ProcessOutcome]
    #: (delivery id, connector) of every delivery of the batch ready to send now.
    pending: list[tuple[str, str]]
    #: Groups opened (or filled): (group id, flush time as epoch seconds).
    groups: list[tuple[str, float]]


def direct_writes(store: Store) -> RunWrite:
    """Writes in a transaction of their own on the calling thread (no writer thread)."""
    return store.transact


def process_events(
    event_ids: Sequence[str],
    *,
    store: Store,
    sources: Mapping[str, Source],
    ruleset: RuleSet,
    destinations: Mapping[str, Destination],
    clock: Clock,
    lease_s: float,
    enrich: Enrich | None = None,
    queries: QueryRun | None = None,
    write: RunWrite | None = None,
    categories: Categories | None = None,
) -> BatchOutcome:
    """Claim a batch of stored events in one statement, normalize, match and render each
    in memory, and record every outcome and planned delivery in one transaction.

    An event that fails (a normalizer or enrichment that raises, a bug in routing) is
    recorded as failed with its reason, alone: the rest of the batch goes on. Events
    claimed elsewhere or already done are skipped.
    """
    run = write or direct_writes(store)
    now = clock.now().timestamp()
    ids = list(dict.fromkeys(event_ids))
    rows: list[InboundRow] = run(
        lambda conn: batches.claim_events(conn, ids, now=now, lease_s=lease_s), "claim events"
    )
    finished: list[batches.FinishedEvent] = []
    planned: list[NewDelivery] = []
    partial: list[tuple[str, _Routed | None, list[tuple[str, float]], str | None]] = []
    for row in rows:
        with bound(event_id=row.id):
            try:
                result = _process_row(
                    row,
                    store,
                    sources,
                    ruleset,
                    destinations,
                    clock,
                    now,
                    enrich,
                    queries,
                    categories,
                )
            except Exception as exc:  # a bug in routing: this event fails, the batch goes on
                log.exception("event %s: processing failed", row.id)
                result = f"processing failed: {type(exc).__name__}: {exc}"
        if result is None:
            continue  # enrichment must wait: the claim expires and the sweeper retries
        if isinstance(result, str):
            finished.append(batches.FinishedEvent(id=row.id, normalized=None, error=result))
            partial.append((row.id, None, [], result))
            continue
        routed, coalescing = result
        # A chat command's follow-up credentials are sealed at rest (store.encryption_keys),
        # in the stored event and wherever a rule copied them into a delivery's params.
        stored, credentials = store.cipher.seal_credentials(routed.stored)
        finished.append(batches.FinishedEvent(id=row.id, normalized=stored))
        planned.extend(
            replace(d, params=store.cipher.seal_values(d.params, credentials)) if credentials else d
            for d in routed.planned
        )
        partial.append((row.id, routed, coalescing, None))
    pending: list[tuple[str, str, str]] = run(
        lambda conn: batches.finish_events(conn, finished, planned, now=now),
        "record processed events",
    )
    by_inbound: dict[str, list[tuple[str, str]]] = {}
    for delivery_id, connector, inbound_id in pending:
        by_inbound.setdefault(inbound_id, []).append((delivery_id, connector))
    outcomes = [
        ProcessOutcome(
            event_id=event_id,
            pending=by_inbound.get(event_id, []),
            matched_rules=routed.matched if routed else [],
            groups=(routed.opened if routed else []) + coalescing,
            suppressed=routed.suppressed if routed else [],
            error=error,
        )
        for event_id, routed, coalescing, error in partial
    ]
    for outcome in outcomes:
        if outcome.error:
            log.warning("event %s failed: %s", outcome.event_id, outcome.error)
    return BatchOutcome(
        events=outcomes,
        pending=[(d, c) for d, c, _ in pending],
        groups=[g for o in outcomes for g in o.groups],
    )


def process_event(event_id: str, **kwargs: Any) -> ProcessOutcome | None:
    """`process_events` for one event; None if it is done or held elsewhere."""
    outcome = process_events([event_id], **kwargs)
    return outcome.events[0] if outcome.events else None


def _process_row(
    row: InboundRow,
    store: Store,
    sources: Mapping[str, Source],
    ruleset: RuleSet,
    destinations: Mapping[str, Destination],
    clock: Clock,
    now: float,
    enrich: Enrich | None,
    queries: QueryRun | None,
    categories: Categories | None = None,
) -> tuple[_Routed, list[tuple[str, float]]] | str | None:
    """Route one claimed event: what it planned, why it failed, or None to retry later."""
    source = sources.get(row.source)
    if source is None:
        return f"source '{row.source}' is not enabled in this worker's configuration"
    raw = RawEvent(
        id=row.id,
        source=row.source,
        provider_delivery_id=row.provider_delivery_id,
        headers=row.headers,
        body=store.cipher.open_bytes(row.body),
        received_at=datetime.fromtimestamp(row.received_at, UTC),
    )
    try:
        events = source.normalize(raw, NormalizeContext(clock=clock))
    except Exception as exc:  # a normalizer bug marks the event failed; it stays replayable
        return f"normalize failed: {type(exc).__name__}: {exc}"
    coalescing: list[tuple[str, float]] = []
    if enriches(source) and enrich is not None:
        events, coalescing = _coalesce(
            store, source, row.source, row.id, row.received_at, events, now
        )
        try:
            events = enrich(source, events) if events else []
        except RetryLater as exc:
            log.warning("event %s: enrichment must wait: %s", row.id, exc)
            return None
        except Exception as exc:  # an enrichment bug must not loop: fail, replayable
            return f"enrich failed: {type(exc).__name__}: {exc}"
    routed = _route(
        store, ruleset, destinations, events, row.id, row.received_at, now, queries, categories
    )
    return routed, coalescing


def _coalesce(
    store: Store,
    source: EnrichingSource,
    source_name: str,
    inbound_id: str,
    received_at: float,
    events: list[Event],
    now: float,
) -> tuple[list[Event], list[tuple[str, float]]]:
    """Park events that coalesce in their source window; return the rest and new windows."""
    direct: list[Event] = []
    opened: list[tuple[str, float]] = []
    for event in events:
        key = source.coalesce_key(event) if source.coalesce_window_s > 0 else None
        if key is None:
            direct.append(event)
            continue
        slot = windows.add_to_group(
            store,
            rule_id=SOURCE_GROUP_PREFIX + source_name,
            key=key,
            event_id=event.id,
            event={**event.to_dict(), "_inbound": inbound_id, "_received_at": received_at},
            now=now,
            window_s=source.coalesce_window_s,
            max_events=1000,
            max_wait_s=COALESCE_MAX_WAIT_FACTOR * source.coalesce_window_s,
        )
        if slot is not None and slot.opened:
            opened.append((slot.group_id, slot.flush_at))
    return direct, opened


def _route(
    store: Store,
    ruleset: RuleSet,
    destinations: Mapping[str, Destination],
    events: list[Event],
    inbound_id: str,
    received_at: float,
    now: float,
    queries: QueryRun | None,
    categories: Categories | None = None,
) -> _Routed:
    """Match events against the rules and plan one delivery per action (or fill groups)."""
    out = _Routed()
    for event in events:
        document = event.to_dict()
        if categories is not None and categories.items:
            document["data"]["category"] = categorize(document, categories)
        for rule in match_rules(ruleset, document):
            out.matched.append(rule.id)
            if not _admitted(store, rule, event.id, document, now):
                out.suppressed.append(rule.id)
                continue
            if rule.group is not None:
                slot = windows.add_to_group(
                    store,
                    rule_id=rule.id,
                    key=_render_key(rule.group.key, rule, document),
                    event_id=event.id,
                    event={**document, "data": {**document["data"], "raw": None}},
                    now=now,
                    window_s=rule.group.window.total_seconds(),
                    max_events=rule.group.max_events,
                )
                if slot is not None and slot.opened:
                    out.opened.append((slot.group_id, slot.flush_at))
                continue
            entity_key = f"{event.source}|{event.entity.kind}|{event.entity.id}"
            for index, rendered in _render(rule, document, queries, destinations):
                out.planned.append(
                    plan_delivery(
                        inbound_id,
                        event.id,
                        entity_key,
                        rule,
                        index,
                        rendered,
                        destinations,
                        seq=received_at + len(out.planned) * 1e-6,
                    )
                )
        document["data"]["raw"] = None  # the raw body is stored once, on the event row
        out.stored.append(document)
    return out


def flush_group(
    group_id: str,
    *,
    store: Store,
    ruleset: RuleSet,
    destinations: Mapping[str, Destination],
    clock: Clock,
    lease_s: float,
    sources: Mapping[str, Source] | None = None,
    enrich: Enrich | None = None,
    queries: QueryRun | None = None,
    categories: Categories | None = None,
) -> FlushOutcome | None:
    """Run a group rule's actions once over its collected events, or enrich a source's
    coalesced burst and route it; None if not due."""
    now = clock.now().timestamp()
    batch = windows.claim_group(store, group_id, now=now, lease_s=lease_s)
    if batch is None:
        # A sliding window may have moved on since this flush was scheduled: come back.
        due_in = windows.group_due_in(store, group_id, now=now)
        return None if due_in is None else FlushOutcome(pending=[], retry_in_s=due_in)
    if batch.rule_id.startswith(SOURCE_GROUP_PREFIX):
        source = (sources or {}).get(batch.rule_id.removeprefix(SOURCE_GROUP_PREFIX))
        return _flush_source_burst(
            batch, source, store, ruleset, destinations, enrich, queries, now, categories
        )
    rule = ruleset.get(batch.rule_id)
    if rule is None or not batch.events:
        windows.finish_group(store, group_id, status="dropped")
        return FlushOutcome(pending=[])
    last = batch.events[-1]
    extra = {
        "events": batch.events,
        "group": {"key": batch.key, "count": len(batch.events), "id": group_id},
    }
    planned = [
        plan_delivery(
            group_id,
            group_id,
            f"group|{rule.id}|{batch.key}",
            rule,
            index,
            rendered,
            destinations,
            seq=now + index * 1e-6,
        )
        for index, rendered in _render(rule, last, queries, destinations, extra)
    ]
    pending_ids = store.add_deliveries(group_id, planned, now=now)
    windows.finish_group(store, group_id)
    return FlushOutcome(pending=_with_connectors(store, planned, pending_ids))


def _flush_source_burst(
    batch: windows.GroupBatch,
    source: Source | None,
    store: Store,
    ruleset: RuleSet,
    destinations: Mapping[str, Destination],
    enrich: Enrich | None,
    queries: QueryRun | None,
    now: float,
    categories: Categories | None = None,
) -> FlushOutcome:
    """One enrichment for a burst of thin events on one entity, routed like any event."""
    if source is None or not enriches(source) or enrich is None or not batch.events:
        windows.finish_group(store, batch.group_id, status="dropped")
        return FlushOutcome(pending=[])
    first, last = batch.events[0], batch.events[-1]
    thin = [
        event_from_dict({k: v for k, v in doc.items() if not k.startswith("_")})
        for doc in batch.events
    ]
    try:
        events = enrich(source, thin)
    except RetryLater as exc:
        wait = exc.after_s if exc.after_s is not None else ENRICH_RETRY_S
        windows.postpone_group(store, batch.group_id, until=now + wait)
        log.warning("source burst %s: enrichment must wait %.1fs: %s", batch.group_id, wait, exc)
        return FlushOutcome(pending=[], retry_in_s=wait)
    except Exception:  # an enrichment bug: keep the burst for a replay, do not loop
        log.exception("source burst %s: enrichment failed", batch.group_id)
        windows.finish_group(store, batch.group_id, status="failed")
        return FlushOutcome(pending=[])
    inbound_id = str(first["_inbound"])
    routed = _route(
        store,
        ruleset,
        destinations,
        events,
        inbound_id,
        float(last["_received_at"]),
        now,
        queries,
        categories,
    )
    pending_ids = store.add_deliveries(inbound_id, routed.planned, now=now)
    windows.finish_group(store, batch.group_id)
    return FlushOutcome(
        pending=_with_connectors(store, routed.planned, pending_ids), groups=routed.opened
    )


__all__ = [
    "BatchOutcome",
    "Enrich",
    "Event",
    "FlushOutcome",
    "ProcessOutcome",
    "flush_group",
    "process_event",
    "process_events",
]
