"""rules/approvals.yaml end to end at the transport: a request DM'd to the project
manager, a signed button click, the Notion PATCH and the edited Discord message; a click
by someone else or a second click changes nothing."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from nacl.signing import SigningKey

from connectors.base import ConnectorEnv, DeliveryContext, RenderedAction, SendResult
from connectors.discord import DiscordConnector
from connectors.notion import NotionConnector
from hub.clock import FakeClock
from hub.config import Settings, load_settings_text
from hub.pipeline.queries import run_queries
from hub.plugins import load_plugins
from hub.rules import RuleSet, load_ruleset, match_rules, render_actions
from hub.rules.templates import TemplateEngine
from hub.secrets import Secret
from hub.sources.base import EnrichContext, HookRequest, NormalizeContext, RawEvent
from hub.sources.discord_interactions import DiscordInteractionsSource
from hub.store import Store, open_store
from hub.store import approvals as stored
from hub.store.snapshots import StoreSnapshots
from tests.connector_support import delivery_context
from tests.fakes.notion import FAKE_TOKEN, FakeNotion
from tests.support import fixture_path
from tests.unit.connectors.test_discord_bot import BOT_TOKEN, FakeBotApi

REPO = Path(__file__).resolve().parents[2]
PLUGINS = load_plugins()
PAGE = "153104cd-477e-809d-8dc4-ff2d96ae3090"
ADA, GRACE = "576377900236931079", "576377900236931080"
KEY = SigningKey.generate()
CONFIG = f"""
destinations:
  team-bot: {{connector: discord, bot_token: {{env: BOT}}}}
  team-slack: {{connector: slack, bot_token: {{env: BOT}}}}
  notion: {{connector: notion, token: {{env: NOTION}}, api_url: "http://notion.test"}}
people:
  ada: {{name: Ada Lovelace, email: ada@example.com, discord: "{ADA}", roles: [project-manager]}}
  grace: {{name: Grace Hopper, email: grace@example.com, discord: "{GRACE}", roles: [team-member]}}
"""


class Providers(httpx.AsyncBaseTransport):
    """discord.com goes to the fake bot API, notion.test to the fake Notion app."""

    def __init__(self, discord: FakeBotApi, notion: FakeNotion) -> None:
        self.discord = httpx.MockTransport(discord)
        self.notion = httpx.ASGITransport(app=notion.app())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "notion.test":
            return await self.notion.handle_async_request(request)
        return await self.discord.handle_async_request(request)


def _settings() -> Settings:
    env = {"BOT": BOT_TOKEN, "NOTION": FAKE_TOKEN}
    return load_settings_text(CONFIG, environ=env, plugins=PLUGINS, base_dir=REPO)


def _ruleset(settings: Settings) -> RuleSet:
    return load_ruleset(
        REPO / "rules" / "approvals.yaml",
        connectors=PLUGINS.connectors,
        destinations=settings.destinations,
        engine=TemplateEngine(),
        people=settings.people,
    )


def _task_in_review() -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "ev-review-1",
        "source": "notion/workspace/acme",
        "type": "notion.page.properties_updated",
        "subject": PAGE,
        "time": "2026-11-21T11:00:00Z",
        "data": {
            "entity": {"kind": "task", "id": PAGE, "url": None, "title": "Write launch post"},
            "actor": {"id": "u2", "name": "Grace Hopper", "email": "grace@example.com"},
            "changes": {"Status": {"from": "In progress", "to": "In review"}},
            "fields": {"Status": "In review"},
            "raw": None,
        },
    }


def _click(custom_id: str, user: str, interaction_id: str) -> dict[str, Any]:
    """The recorded button interaction, as `user` clicking `custom_id`, signed and
    normalized by the Discord source."""
    payload = json.loads(
        fixture_path("discord", "interaction.message_component.button.json").read_text()
    )
    payload = copy.deepcopy(payload)
    payload["data"]["custom_id"] = custom_id
    payload["id"] = interaction_id
    for holder in (payload.get("user"), (payload.get("member") or {}).get("user")):
        if isinstance(holder, dict):
            holder["id"] = user
    body = json.dumps(payload).encode()
    clock = FakeClock()
    stamp = str(int(clock.now().timestamp()))
    headers = {
        "x-signature-ed25519": KEY.sign(stamp.encode() + body).signature.hex(),
        "x-signature-timestamp": stamp,
        "content-type": "application/json",
    }
    source = DiscordInteractionsSource()
    secret = Secret(KEY.verify_key.encode().hex(), origin="test")
    verdict = source.verify(
        HookRequest(source="discord", headers=headers, body=body, received_at=clock.now()),
        secret,
        clock,
    )
    raw = RawEvent(
        id="raw",
        source="discord",
        provider_delivery_id=verdict.provider_delivery_id,
        headers=headers,
        body=body,
        received_at=clock.now(),
    )
    (event,) = source.normalize(raw, NormalizeContext(clock=clock))
    return event.to_dict()


class Hub:
    """The worker's steps for one event: match, query, render, send; nothing mocked."""

    def __init__(self, store: Store, settings: Settings, http: httpx.AsyncClient) -> None:
        self.store, self.settings, self.http = store, settings, http
        self.ruleset = _ruleset(settings)
        self.discord = DiscordConnector(ConnectorEnv(http=http, base_dir=REPO))
        self.notion = NotionConnector(ConnectorEnv(http=http, base_dir=REPO))

    async def handle(self, event: dict[str, Any]) -> list[tuple[RenderedAction, SendResult]]:
        out = []
        for rule in match_rules(self.ruleset, event):
            ctx = EnrichContext(
                clock=FakeClock(datetime(2026, 11, 21, 11, 5, tzinfo=UTC)),
                http=self.http,
                snapshots=StoreSnapshots(self.store),
                throttle=_no_wait,
            )
            results = await run_queries(rule, event, store=self.store, sources={}, ctx=ctx)
            for _, action in render_actions(rule, event, extra={"query": results}):
                assert isinstance(action, RenderedAction), action
                if action.connector == "reply":
                    out.append((action, SendResult("ok")))
                    continue
                connector = self.notion if action.connector == "notion" else self.discord
                result = await connector.send(action, self._context(event, action))
                out.append((action, result))
        return out

    def _context(self, event: dict[str, Any], action: RenderedAction) -> DeliveryContext:
        return delivery_context(
            self.settings.destinations[action.destination or ""],
            now=datetime(2026, 11, 21, 11, 5, tzinfo=UTC),
            rule_id="r",
            delivery_id="d",
            event_id=str(event["id"]),
        )


async def _no_wait(key: str, limits: Sequence[tuple[int, float]]) -> None:
    return None


def test_a_signed_click_writes_back_to_notion_and_edits_the_request_once(tmp_path: Path) -> None:
    discord, notion = FakeBotApi(), FakeNotion.with_fixtures()
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    settings = _settings()

    async def run() -> None:
        async with httpx.AsyncClient(transport=Providers(discord, notion)) as http:
            hub = Hub(store, settings, http)
            [(request, sent)] = await hub.handle(_task_in_review())
            assert request.params["user"] == ADA  # the project manager, by DM
            assert sent.outcome == "ok"
            assert sent.ref is not None
            approve = request.params["buttons"][0]["custom_id"]
            request_id = approve.split(":")[1]
            stored.add_message(
                store,
                request_id,
                {"platform": "discord", "destination": "team-bot", "ref": sent.ref},
            )
            discord.requests.clear()

            # Grace is not a project manager: told so, nothing written.
            [(answer, _)] = await hub.handle(_click(approve, GRACE, "1573654838032465001"))
            assert "not allowed" in answer.params["text"]
            assert notion.writes == []

            # Ada approves: Notion PATCH, the request edited, Grace (the requester) told.
            done = await hub.handle(_click(approve, ADA, "1573654838032465002"))
            assert [a.connector for a, _ in done] == ["notion", "discord", "discord", "reply"]
            assert all(r.outcome == "ok" for _, r in done), done
            [(method, page, _)] = notion.writes
            assert (method, page.replace("-", "")) == ("PATCH", PAGE.replace("-", ""))
            assert notion.writes[0][2]["properties"]["Status"] == {"status": {"name": "Done"}}
            edit = discord.requests[0]
            channel, message = sent.ref.split("/")
            assert (edit.method, edit.url.path) == (
                "PATCH",
                f"/api/v10/channels/{channel}/messages/{message}",
            )
            body = json.loads(edit.content)
            assert body["content"] == "“Write launch post” approved by Ada Lovelace."
            assert [b["disabled"] for b in body["components"][0]["components"]] == [True, True]
            assert done[3][0].params["text"] == "You approved “Write launch post”."

            # A second click decides nothing more.
            [(again, _)] = await hub.handle(_click(approve, ADA, "1573654838032465003"))
            assert "already approved by Ada Lovelace" in again.params["text"]
            assert len(notion.writes) == 1

    try:
        asyncio.run(run())
    finally:
        store.close()
