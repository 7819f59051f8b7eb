"""Process one accepted webhook: normalize, match rules, plan deliveries (outbox rows).

Also flushes `group` windows. Everything here is idempotent: deliveries are unique on
their idempotency key, window counts on (rule, event), group members on (rule, event),
so a message processed twice after a crash plans nothing new.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connectors.base import Destination, RenderedAction
from hub.clock import Clock
from hub.events import Event, idempotency_key
from hub.rules import Rule, RuleSet, match_rules, render_actions
from hub.rules.matcher import RenderProblem
from hub.rules.templates import TemplateProblem
from hub.sources.base import NormalizeContext, RawEvent, Source
from hub.store import NewDelivery, Store, windows


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
    """Claim, normalize and route one stored event; None if it is done or held elsewhere."""
    now = clock.now().timestamp()
    row = store.claim_event(event_id, now=now, lease_s=lease_s)
    if row is None:
        return None
    source = sources.get(row.source)
    if source is None:
        return _failed(
            store,
            row.id,
            now,
            f"source '{row.source}' is not enabled in this worker's configuration",
        )
    raw = RawEvent(
        id=row.id,
        source=row.source,
        delivery_id=row.delivery_id,
        headers=row.headers,
        body=row.body,
        received_at=datetime.fromtimestamp(row.received_at, UTC),
    )
    try:
        events = source.normalize(raw, NormalizeContext(clock=clock))
    except Exception as exc:  # a normalizer bug marks the event failed; it stays replayable
        return _failed(store, row.id, now, f"normalize failed: {type(exc).__name__}: {exc}")
    planned: list[NewDelivery] = []
    matched: list[str] = []
    suppressed: list[str] = []
    opened: list[tuple[str, float]] = []
    stored: list[dict[str, Any]] = []
    for event in events:
        document = event.to_dict()
        for rule in match_rules(ruleset, document):
            matched.append(rule.id)
            if not _admitted(store, rule, event.id, document, now):
                suppressed.append(rule.id)
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
                    opened.append((slot.group_id, slot.flush_at))
                continue
            entity_key = f"{event.source}|{event.entity.kind}|{event.entity.id}"
            for index, rendered in render_actions(rule, document):
                planned.append(
                    plan_delivery(
                        row.id,
                        event.id,
                        entity_key,
                        rule,
                        index,
                        rendered,
                        destinations,
                        seq=row.received_at + len(planned) * 1e-6,
                    )
                )
        document["data"]["raw"] = None  # the raw body is stored once, on the event row
        stored.append(document)
    pending_ids = store.finish_event(row.id, now=now, normalized=stored, new_deliveries=planned)
    return ProcessOutcome(
        event_id=row.id,
        pending=_with_connectors(store, planned, pending_ids),
        matched_rules=matched,
        groups=opened,
        suppressed=suppressed,
    )


def flush_group(
    group_id: str,
    *,
    store: Store,
    ruleset: RuleSet,
    destinations: Mapping[str, Destination],
    clock: Clock,
    lease_s: float,
) -> list[tuple[str, str]] | None:
    """Run a group rule's actions once over its collected events; None if not due."""
    now = clock.now().timestamp()
    batch = windows.claim_group(store, group_id, now=now, lease_s=lease_s)
    if batch is None:
        return None
    rule = ruleset.get(batch.rule_id)
    if rule is None or not batch.events:
        windows.finish_group(store, group_id, status="dropped")
        return []
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
        for index, rendered in render_actions(rule, last, extra=extra)
    ]
    pending_ids = store.add_deliveries(group_id, planned, now=now)
    windows.finish_group(store, group_id)
    return _with_connectors(store, planned, pending_ids)


def _failed(store: Store, event_id: str, now: float, error: str) -> ProcessOutcome:
    store.finish_event(event_id, now=now, normalized=None, new_deliveries=[], error=error)
    return ProcessOutcome(event_id=event_id, pending=[], matched_rules=[], error=error)


def _render_key(key: Any, rule: Rule, document: Mapping[str, Any]) -> str:
    try:
        return str(key.render({"event": document, "rule": {"id": rule.id}}))[:512]
    except TemplateProblem:
        return ""  # an unrenderable key still counts, under one shared key


def _admitted(
    store: Store, rule: Rule, event_id: str, document: Mapping[str, Any], now: float
) -> bool:
    for kind, window in (("dedupe", rule.dedupe), ("throttle", rule.throttle)):
        if window is not None and not windows.admit(
            store,
            rule_id=rule.id,
            kind=kind,
            key=_render_key(window.key, rule, document),
            event_id=event_id,
            now=now,
            per_s=window.per.total_seconds(),
            limit=window.limit,
        ):
            return False
    return True


def plan_delivery(
    inbound_id: str,
    event_id: str,
    entity_key: str,
    rule: Rule,
    index: int,
    rendered: RenderedAction | RenderProblem,
    destinations: Mapping[str, Destination],
    *,
    seq: float = 0.0,
) -> NewDelivery:
    """One outbox row; a render failure or disabled destination is recorded, not dropped."""
    key = idempotency_key(event_id, rule.id, index)
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
        id=key[:32],
        inbound_id=inbound_id,
        event_id=event_id,
        rule_id=rule.id,
        action_index=index,
        connector=spec.connector,
        operation=spec.operation,
        destination=spec.destination,
        params=params,
        idempotency_key=key,
        entity_key=entity_key,
        seq=seq,
        status=status,
        last_error=error,
    )


def _with_connectors(
    store: Store, planned: list[NewDelivery], pending_ids: list[str]
) -> list[tuple[str, str]]:
    by_id = {d.id: d.connector for d in planned}
    out = []
    for delivery_id in pending_ids:
        connector = by_id.get(delivery_id)
        if connector is None:
            row = store.get_delivery(delivery_id)
            connector = row.connector if row else ""
        out.append((delivery_id, connector))
    return out


__all__ = ["Event", "ProcessOutcome", "flush_group", "plan_delivery", "process_event"]
