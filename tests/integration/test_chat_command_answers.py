"""A chat command that needs Notion: acknowledged at once, answered later with the data.

The real hub (embedded worker) gets a signed Discord interaction, answers Discord's 3 s
deadline with a deferral without waiting for Notion's query, then the rule's `notion.query` runs
against the fake Notion API (slow on purpose: longer than Discord's 3 s) and the answer
edits the deferred message through the interaction's follow-up URL (faked with respx).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import httpx
import respx
from nacl.signing import SigningKey
from sqlalchemy import text
from starlette.testclient import TestClient

from connectors.base import ConnectorEnv
from hub.app import create_app
from hub.clock import SystemClock
from hub.pipeline.deliver import DeliveryEngine
from hub.plugins import load_plugins
from hub.runtime import build_runtime
from hub.secrets import Secret
from hub.store.crypto import new_key
from tests.fakes.notion import FAKE_TOKEN, FakeNotion
from tests.support import fixture_path, make_settings, process_stored_batch, wait_until

TASKS_DB = "8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80"
SIGNING_KEY = SigningKey.generate()
DISCORD_EPOCH_MS = 1_420_070_400_000
#: Longer than the 3 s Discord waits for the interaction's first answer.
SLOW_QUERY_S = 3.5

RULES = """
rules:
  - id: tasks-open
    on: command.tasks
    query:
      open:
        notion.query:
          database: task
          filter: {property: Status, status: {does_not_equal: Done}}
    actions:
      - reply:
          url: "{{ event.data.fields.followup.url }}"
          kind: "{{ event.data.fields.followup.kind }}"
          expires_at: "{{ event.data.fields.followup.expires_at }}"
          text: >-
            {{ query.open | length }} open:
            {{ query.open | map(attribute='title') | sort | join(', ') }}
"""


#: The same command answered without a query: only the follow-up matters here.
REPLY_RULES = """
rules:
  - id: tasks-open
    on: command.tasks
    actions:
      - reply:
          url: "{{ event.data.fields.followup.url }}"
          kind: "{{ event.data.fields.followup.kind }}"
          expires_at: "{{ event.data.fields.followup.expires_at }}"
          text: done
"""


def _interaction_now() -> bytes:
    """The real fixture command, with an id minted now (its follow-up token lives 15 min
    from the id's time, which the reply connector checks)."""
    payload = json.loads(
        fixture_path("discord", "interaction.application_command.tasks.json").read_bytes()
    )
    now_ms = int(SystemClock().now().timestamp() * 1000)
    payload["id"] = str(((now_ms - DISCORD_EPOCH_MS) << 22) + 1)
    return json.dumps(payload).encode()


def _signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(SystemClock().now().timestamp()))
    signature = SIGNING_KEY.sign(timestamp.encode() + body).signature.hex()
    return {
        "x-signature-ed25519": signature,
        "x-signature-timestamp": timestamp,
        "content-type": "application/json",
    }


@respx.mock(assert_all_called=False)
def test_a_slow_notion_query_is_deferred_then_answered_through_the_follow_up(
    tmp_path: Path, notion: tuple[FakeNotion, str], respx_mock: respx.MockRouter
) -> None:
    fake, base = notion
    fake.query_delay_s = SLOW_QUERY_S
    respx_mock.route(host="127.0.0.1").pass_through()  # the fake Notion API is real HTTP
    follow_up = respx_mock.patch(
        url__regex=r"^https://discord\.com/api/v10/webhooks/\d+/[^/]+/messages/@original$"
    ).mock(return_value=httpx.Response(200, json={"id": "1", "content": "edited"}))
    settings = make_settings(
        tmp_path,
        rules=RULES,
        extra_sources=f"""  discord:
    secret: {{env: TEST_DISCORD_PUBLIC_KEY}}
  notion:
    secret: {{env: TEST_NOTION_SECRET, optional: true}}
    api_token: {{env: TEST_NOTION_TOKEN}}
    api_url: "{base}"
    databases:
      "{TASKS_DB}": {{kind: task}}""",
        environ={
            "TEST_DISCORD_PUBLIC_KEY": SIGNING_KEY.verify_key.encode().hex(),
            "TEST_NOTION_TOKEN": FAKE_TOKEN,
        },
    )
    runtime = build_runtime(settings, load_plugins())
    body = _interaction_now()

    # httpx's own transport, which respx intercepts (the hub's default runs on aiohttp).
    app = create_app(runtime, run_worker=True, worker_transport=httpx.AsyncHTTPTransport())
    with TestClient(app) as client:
        response = client.post("/hooks/discord", content=body, headers=_signed(body))
        # `seen` lists requests Notion has answered. The worker may already have read the
        # database's schema (a quick GET), but the slow query cannot have been answered.
        answered_by_notion_before_deferral = [s.path for s in fake.seen]
        wait_until(lambda: follow_up.called, 20, "the deferred answer was edited")
        # Once delivered, the stored row no longer holds the follow-up token.
        token = json.loads(body)["token"]
        event_id = response.headers["X-Switchboard-Event-Id"]

        def scrubbed() -> bool:
            [reply] = runtime.store.list_deliveries(inbound_id=event_id)
            return reply.status == "delivered" and token not in json.dumps(reply.params)

        wait_until(scrubbed, 10, "the delivered reply's params masked")
        [reply] = runtime.store.list_deliveries(inbound_id=event_id)
    runtime.close()
    assert reply.params["url"].startswith("https://discord.com/api/v10/webhooks/")
    assert reply.params["kind"] == "discord.interaction"

    # Discord got its deferral ("thinking…") without waiting for Notion's query...
    assert response.status_code == 200
    assert response.json() == {"type": 5}
    assert f"/v1/databases/{TASKS_DB}/query" not in answered_by_notion_before_deferral
    # ...and the answer came later through the follow-up, with Notion's data in it.
    assert [s.path for s in fake.seen][-1] == f"/v1/databases/{TASKS_DB}/query"
    sent = json.loads(follow_up.calls.last.request.content)
    assert sent["content"] == "3 open: Draft release notes, Update pricing page, Write launch post"
    assert sent["allowed_mentions"] == {"parse": []}


def test_the_follow_up_token_never_shows_in_the_admin_api_or_dashboard(tmp_path: Path) -> None:
    """The interaction token in `fields.followup` (marked `secret: true` by the source) is
    masked wherever the admin looks: the event's JSON, its dashboard page, and the
    reply delivery's params."""
    from tests.admin_support import ADMIN_TOKEN, admin_hub, bearer, login

    body = _interaction_now()
    token = json.loads(body)["token"]
    source = f"""  discord:
    secret: {{env: TEST_NO_DISCORD_SECRET, optional: true}}
    public_key: "{SIGNING_KEY.verify_key.encode().hex()}"
"""
    with admin_hub(tmp_path, extra_sources=source) as (runtime, client):
        response = client.post("/hooks/discord", content=body, headers=_signed(body))
        event_id = response.headers["X-Switchboard-Event-Id"]
        wait_until(
            lambda: (
                (row := runtime.store.get_event(event_id)) is not None and row.status == "processed"
            ),
            20,
            "the command event processed",
        )
        api = client.get(f"/api/v1/events/{event_id}", headers=bearer(ADMIN_TOKEN))
        signed_in = login(client, token=ADMIN_TOKEN)
        page = client.get(f"/admin/events/{event_id}")
    assert api.status_code == 200
    followup = api.json()["normalized"][0]["data"]["fields"]["followup"]
    assert followup["kind"] == "discord.interaction"
    assert followup["interaction_token"] == "**********"
    assert token not in api.text
    assert signed_in.status_code in (302, 303)
    assert page.status_code == 200
    assert token not in page.text


def test_follow_up_credentials_are_sealed_at_rest_and_opened_for_the_send(
    tmp_path: Path,
) -> None:
    # given store.encryption_keys, and a processed /tasks command whose rule replies
    # through the follow-up URL (the rule needs no query here)
    key = new_key()
    settings = make_settings(
        tmp_path,
        rules=REPLY_RULES,
        extra_sources="""  discord:
    secret: {env: TEST_DISCORD_PUBLIC_KEY}""",
        environ={"TEST_DISCORD_PUBLIC_KEY": SIGNING_KEY.verify_key.encode().hex()},
    )
    settings = replace(settings, encryption_keys=(Secret(key),))
    runtime = build_runtime(settings, load_plugins())
    body = _interaction_now()
    token = json.loads(body)["token"]
    with TestClient(create_app(runtime, run_worker=False)) as client:
        answer = client.post("/hooks/discord", content=body, headers=_signed(body))
        event_id = answer.headers["X-Switchboard-Event-Id"]
        # the admin API still shows the payload (opened, its credentials masked)
        shown = client.get(f"/api/v1/events/{event_id}", headers={"Authorization": "Bearer none"})
    assert answer.status_code == 200
    assert token not in shown.text
    outcome = process_stored_batch(runtime, [event_id])
    [(delivery_id, connector)] = outcome.pending
    assert connector == "reply"
    # then neither the request as stored, nor the normalized event, nor the pending
    # delivery holds the token in clear
    with runtime.store.engine.connect() as conn:
        raw = conn.execute(text("SELECT body FROM event_bodies")).scalar_one()
        normalized = conn.execute(text("SELECT normalized FROM events")).scalar_one()
        params = conn.execute(text("SELECT params FROM deliveries")).scalar_one()
    for stored in (bytes(raw).decode("latin-1"), str(normalized), str(params)):
        assert token not in stored
        assert "fernet:" in stored

    # and the send opens it: the follow-up URL reaches Discord whole
    seen: list[str] = []

    def discord(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"id": "1", "content": "done"})

    async def send() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(discord)) as http:
            env = ConnectorEnv(http=http, base_dir=runtime.settings.base_dir)
            engine = DeliveryEngine(
                store=runtime.store,
                settings=runtime.settings,
                connectors={"reply": load_plugins().connectors["reply"](env)},
                clock=runtime.clock,
                rng=runtime.rng,
                limiter=runtime.limiter,
                breaker=runtime.breaker,
            )
            await engine.deliver(delivery_id)

    asyncio.run(send())
    runtime.close()
    assert len(seen) == 1
    assert token in seen[0]
