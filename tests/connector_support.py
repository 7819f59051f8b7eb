"""Sending rendered actions through a real connector over a faked HTTP transport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import respx

from connectors.base import Connector, ConnectorEnv, DeliveryContext, RenderedAction, SendResult
from tests.support import REPO


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
