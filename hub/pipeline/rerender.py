"""Render a replayed delivery again when it died before it was rendered.

A delivery whose template failed, or whose rule's query could not be read (Notion down,
a filter fixed since), is planned dead with nothing to send. Replaying it must not send
that nothing: the delivery engine asks here for its params, rendered now from the stored
event with the current rule, queries included, exactly as processing would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from connectors.base import RenderedAction
from hub.pipeline.queries import run_queries
from hub.rules import RuleSetRef, render_actions
from hub.sources.base import EnrichContext, QueryFailed, Source
from hub.store import DeliveryRow, Store

__all__ = ["UNRENDERED", "Rerenderer", "is_unrendered", "unrendered_params"]

#: The params key of a delivery planned without params; its value says why.
UNRENDERED = "$unrendered"


def unrendered_params(reason: str) -> dict[str, Any]:
    return {UNRENDERED: reason}


def is_unrendered(params: Mapping[str, Any]) -> bool:
    return UNRENDERED in params


class Rerenderer:
    """`await rerender(row)`: the delivery's params, or why they cannot be rendered."""

    def __init__(
        self,
        *,
        store: Store,
        rules: RuleSetRef,
        sources: Mapping[str, Source],
        context: Callable[[], EnrichContext],
    ) -> None:
        self._store = store
        self._rules = rules
        self._sources = sources
        self._context = context

    async def __call__(self, row: DeliveryRow) -> dict[str, Any] | str:
        stored = await asyncio.to_thread(self._store.get_event, row.inbound_id)
        documents = (stored.normalized or []) if stored is not None else []
        documents = [self._store.cipher.open_all(d) for d in documents]
        document = next((d for d in documents if d.get("id") == row.event_id), None)
        if document is None:
            return (
                "its event is not stored (a group's delivery, or pruned); replay the event instead"
            )
        rule = self._rules.current.get(row.rule_id)
        if rule is None:
            return f"rule '{row.rule_id}' is no longer loaded"
        if not rule.has_action(row.action_index) or (
            rule.spec_for(row.action_index).connector != row.connector
        ):
            return f"rule '{row.rule_id}' no longer has this action at position {row.action_index}"
        extra = None
        if rule.queries:
            try:
                results = await run_queries(
                    rule, document, store=self._store, sources=self._sources, ctx=self._context()
                )
            except QueryFailed as exc:
                return str(exc)
            extra = {"query": results}
        for index, rendered in render_actions(rule, document, extra=extra):
            if index == row.action_index:
                if isinstance(rendered, RenderedAction):
                    return dict(rendered.params)
                return rendered.message
        return f"rule '{row.rule_id}' rendered no action at position {row.action_index}"
