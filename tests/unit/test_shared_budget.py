"""One Notion integration token is one 3 requests/s budget, for page reads and writes alike."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from connectors.base import ConnectorEnv, DeliveryContext, Destination, shared_budget_key
from connectors.notion import NotionConnector
from hub.clock import FakeClock
from hub.events import Entity, Event
from hub.pipeline.deliver import _budget_key
from hub.secrets import Secret
from hub.sources.base import EnrichContext
from hub.sources.notion import NotionSource
from tests.connector_support import delivery_context
from tests.fakes.notion import FAKE_TOKEN

PAGE = "153104cd-477e-809d-8dc4-ff2d96ae3090"


def _ctx(destination: Destination) -> DeliveryContext:
    return delivery_context(
        destination,
        now=datetime(2026, 11, 21, tzinfo=UTC),
        rule_id="r",
        delivery_id="d",
        event_id="e",
    )


def test_the_source_and_the_connector_draw_on_the_same_budget(tmp_path: Path) -> None:
    token = Secret(FAKE_TOKEN, origin="env:NOTION_TOKEN")
    destination = Destination(name="acme", connector="notion", options={"token": token})
    throttled: list[str] = []

    async def throttle(key: str, limits: Any) -> None:
        throttled.append(key)
        raise RuntimeError("stop after the budget check")  # no network needed

    async def run() -> str:
        async with httpx.AsyncClient() as http:
            connector = NotionConnector(ConnectorEnv(http=http, base_dir=tmp_path))
            source = NotionSource(api_token=token)
            ctx = EnrichContext(
                clock=FakeClock(),
                http=http,
                snapshots=None,
                throttle=throttle,  # type: ignore[arg-type]
            )
            with contextlib.suppress(RuntimeError):
                await source.enrich([_thin_event()], ctx)
            return _budget_key(connector, _ctx(destination), "notion:acme")

    delivery_key = asyncio.run(run())
    assert throttled == [delivery_key]
    assert delivery_key == shared_budget_key("notion-api", FAKE_TOKEN)
    assert FAKE_TOKEN not in delivery_key


def _thin_event() -> Event:
    return Event(
        id="e1",
        source="notion/workspace/w",
        type="notion.page.properties_updated",
        subject=f"page/{PAGE}",
        time=datetime(2026, 11, 21, tzinfo=UTC),
        entity=Entity(kind="page", id=PAGE),
        fields={"notion": {"entity_type": "page", "updated_properties": []}},
    )
