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
