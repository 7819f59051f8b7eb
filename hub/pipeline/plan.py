"""Rendering a matched rule's actions and planning the delivery rows they become."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from connectors.base import Destination, RenderedAction
from hub.events import idempotency_key
from hub.pipeline.queries import QueryRun
from hub.pipeline.rerender import unrendered_params
from hub.rules import Rule, render_actions
from hub.rules.matcher import RenderProblem
from hub.rules.templates import TemplateProblem
from hub.sources.base import (
    QueryFailed,
)
from hub.store import NewDelivery, Store, windows

log = logging.getLogger("switchboard.processing")


def _all_disabled(rule: Rule, destinations: Mapping[str, Destination]) -> bool:
    found = [destinations.get(spec.destination or "") for spec in rule.actions]
    return all(d is not None and d.disabled_reason for d in found)


def _render(
    rule: Rule,
    document: Mapping[str, Any],
    queries: QueryRun | None,
    destinations: Mapping[str, Destination],
    extra: Mapping[str, Any] | None = None,
) -> list[tuple[int, RenderedAction | RenderProblem]]:
    """The rule's actions, after its `query:` steps; a failed query kills them with why.

    A report nobody would receive (every destination disabled) reads nothing: its
    deliveries are recorded as skipped without spending the provider's budget.
    """
    if rule.queries and _all_disabled(rule, destinations):
        return [
            (
                spec.index,
                RenderedAction(
                    connector=spec.connector,
                    operation=spec.operation,
                    destination=spec.destination,
                    params={},
                ),
            )
            for spec in rule.actions
        ]
    if rule.queries:
        try:
            if queries is None:
                raise QueryFailed("this process cannot run query steps")
            results = queries(rule, document)
        except QueryFailed as exc:
            log.warning("rule %s: %s", rule.id, exc)
            return [
                (spec.index, RenderProblem(rule.id, spec.index, str(exc))) for spec in rule.actions
            ]
        extra = {**(extra or {}), "query": results}
    return render_actions(rule, document, extra=extra)


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
    spec = rule.spec_for(index)  # a fanned-out index maps back to its action
    status, error, params = "pending", None, {}
    if isinstance(rendered, RenderProblem):
        # Marked, so that a replay renders it again instead of sending nothing.
        status, error, params = "dead", rendered.message, unrendered_params(rendered.message)
        status = "skipped" if rendered.skip else status  # nobody to send to (hub/rules/fanout.py)
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
