"""Process one accepted webhook: normalize, match rules, plan deliveries (outbox rows)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connectors.base import Destination, RenderedAction
from hub.clock import Clock
from hub.events import Event, idempotency_key
from hub.rules import Rule, RuleSet, match_rules, render_actions
from hub.rules.matcher import RenderProblem
from hub.sources.base import NormalizeContext, RawEvent, Source
from hub.store import NewDelivery, Store


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessOutcome:
    event_id: str
    #: (delivery id, connector) of deliveries ready to send now.
    pending: list[tuple[str, str]]
    matched_rules: list[str]
    error: str | None = None


def process_event(
    event_id: str,
    *,
    store: Store,
    sources: Mapping[str, Source],
    ruleset: RuleSet,
    destinations: Mapping[str, Destination],
    clock: Clock,
    lease_s: float,
) -> ProcessOutcome | None:
    """Claim, normalize and route one stored event; None if it is done or held elsewhere.

    Deliveries are inserted with their idempotency key as a unique column, so running
    this twice for one event (a redelivered message after a crash) plans nothing new.
    """
    now = clock.now().timestamp()
    row = store.claim_event(event_id, now=now, lease_s=lease_s)
    if row is None:
        return None
    source = sources.get(row.source)
    if source is None:
        error = f"source '{row.source}' is not enabled in this worker's configuration"
        store.finish_event(row.id, now=now, normalized=None, new_deliveries=[], error=error)
        return ProcessOutcome(event_id=row.id, pending=[], matched_rules=[], error=error)
    raw = RawEvent(
        id=row.id, source=row.source, delivery_id=row.delivery_id, headers=row.headers,
        body=row.body, received_at=datetime.fromtimestamp(row.received_at, UTC),
    )
    try:
        events = source.normalize(raw, NormalizeContext(clock=clock))
    except Exception as exc:  # a normalizer bug marks the event failed; it stays replayable
        error = f"normalize failed: {type(exc).__name__}: {exc}"
        store.finish_event(row.id, now=now, normalized=None, new_deliveries=[], error=error)
        return ProcessOutcome(event_id=row.id, pending=[], matched_rules=[], error=error)
    planned: list[NewDelivery] = []
    matched_ids: list[str] = []
    stored: list[dict[str, Any]] = []
    for event in events:
        document = event.to_dict()
        for rule in match_rules(ruleset, document):
            matched_ids.append(rule.id)
            for index, rendered in render_actions(rule, document):
                planned.append(_plan_delivery(row.id, event, rule, index, rendered,
                                              destinations))
        document["data"]["raw"] = None  # the raw body is stored once, on the event row
        stored.append(document)
    pending_ids = store.finish_event(row.id, now=now, normalized=stored, new_deliveries=planned)
    by_id = {d.id: d.connector for d in planned}
    pending = [(d_id, by_id.get(d_id) or _connector_of(store, d_id)) for d_id in pending_ids]
    return ProcessOutcome(event_id=row.id, pending=pending, matched_rules=matched_ids)


def _plan_delivery(
    inbound_id: str,
    event: Event,
    rule: Rule,
    index: int,
    rendered: RenderedAction | RenderProblem,
    destinations: Mapping[str, Destination],
) -> NewDelivery:
    """One outbox row; a render failure or disabled destination is recorded, not dropped."""
    key = idempotency_key(event.id, rule.id, index)
    spec = rule.actions[index]
    status, error, params = "pending", None, {}
    if isinstance(rendered, RenderProblem):
        status, error = "dead", rendered.message
    else:
        params = dict(rendered.params)
        dest = destinations.get(rendered.destination) if rendered.destination else None
        if dest is not None and dest.disabled_reason:
            status = "skipped"
            error = f"destination '{dest.name}' is disabled: {dest.disabled_reason}"
    return NewDelivery(
        id=key[:32], inbound_id=inbound_id, event_id=event.id, rule_id=rule.id,
        action_index=index, connector=spec.connector, operation=spec.operation,
        destination=spec.destination, params=params, idempotency_key=key,
        entity_key=f"{event.source}|{event.entity.kind}|{event.entity.id}", status=status,
        last_error=error,
    )


def _connector_of(store: Store, delivery_id: str) -> str:
    row = store.get_delivery(delivery_id)
    return row.connector if row else ""
