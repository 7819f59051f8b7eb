"""Sending rendered actions through a real connector over a faked HTTP transport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import respx

from connectors.base import (
    Connector,
    ConnectorEnv,
    DeliveryContext,
    Destination,
    RenderedAction,
    SendResult,
)
from tests.support import REPO


def delivery_context(
    destination: Destination | None,
    *,
    now: datetime,
    rule_id: str = "issue-opened",
    delivery_id: str = "dlv-1",
    event_id: str = "evt-1",
    idempotency_key: str = "0" * 64,
    attempt: int = 1,
    previous_ref: str | None = None,
    entity_key: str | None = None,
    entity_refs: Mapping[str, str] | None = None,
) -> DeliveryContext:
    """What the engine would tell a connector about a first delivery to `destination`."""
    return DeliveryContext(
        delivery_id=delivery_id,
        event_id=event_id,
        rule_id=rule_id,
        idempotency_key=idempotency_key,
        attempt=attempt,
        destination=destination,
        now=now,
        previous_ref=previous_ref,
        entity_key=entity_key,
        entity_refs=dict(entity_refs or {}),
    )


def rendered_action(
    connector: str,
    destination: str | None,
    params: Mapping[str, Any] | None = None,
    *,
    operation: str | None = None,
    destination_param: str | None = None,
) -> RenderedAction:
    """A `connector` action to `destination`, its templates already rendered into `params`.

    `destination_param` names the param that picks the destination (the connector's own
    `destination_param`, e.g. "channel"): it is set to `destination` unless `params` sets it.
    """
    named: dict[str, Any] = {destination_param: destination} if destination_param else {}
    return RenderedAction(
        connector=connector,
        operation=operation,
        destination=destination,
        params={**named, **(params or {})},
    )


def send_in_order(
    connector_type: Callable[[ConnectorEnv], Connector],
    handler: Callable[[httpx.Request], httpx.Response],
    sends: Sequence[tuple[RenderedAction, DeliveryContext]],
    *,
    base_dir: Path,
) -> list[SendResult]:
    """Run the sends in order through one connector (so its caches are shared)."""

    async def run() -> list[SendResult]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            connector = connector_type(ConnectorEnv(http=http, base_dir=base_dir))
            return [await connector.send(action, ctx) for action, ctx in sends]

    return asyncio.run(run())


def sent_json(route: respx.Route) -> dict[str, Any]:
    """The JSON object the route's last call sent."""
    data = json.loads(route.calls.last.request.content)
    assert isinstance(data, dict)
    return data


class RespxService:
    """A respx router standing in for one service's API, sending through one connector type.

    Subclasses mock their routes on `self.router`; `default_context` is what a lone send
    gets."""

    def __init__(
        self,
        connector_type: Callable[[ConnectorEnv], Connector],
        api: str,
        default_context: Callable[[], DeliveryContext],
    ) -> None:
        self.connector_type = connector_type
        self.router = respx.MockRouter(base_url=api, assert_all_called=False)
        self._default_context = default_context

    def send(self, *sends: tuple[RenderedAction, DeliveryContext]) -> list[SendResult]:
        """Run the sends in order through one connector (so its caches are shared)."""
        return send_in_order(self.connector_type, self.router.handler, sends, base_dir=REPO)

    def send_one(self, action: RenderedAction, ctx: DeliveryContext | None = None) -> SendResult:
        return self.send((action, ctx or self._default_context()))[0]

    @property
    def requests(self) -> list[httpx.Request]:
        return [call.request for call in self.router.calls]
