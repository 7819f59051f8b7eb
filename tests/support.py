"""Test helpers shared by suites: fixture paths, signing, polling, config files."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from connectors.base import Destination
from hub.config import Settings, load_settings
from hub.errors import ConfigError
from hub.pipeline.process import BatchOutcome, ProcessOutcome, process_events
from hub.plugins import Plugins, load_plugins
from hub.rules import RuleSet, load_ruleset
from hub.rules.templates import TemplateEngine
from hub.runtime import Runtime

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared" / "fixtures"
GITHUB_SECRET = "gh-test-secret-not-real"


def fixture_path(*parts: str) -> Path:
    path = FIXTURES.joinpath(*parts)
    if not path.exists():
        raise AssertionError(f"fixture {path} is missing; shared/ must sit beside the repo")
    return path


def fixture_json(*parts: str) -> Any:
    """A shared JSON fixture, parsed."""
    return json.loads(fixture_path(*parts).read_text(encoding="utf-8"))


def copy_example(to: Path) -> Path:
    """The shipped example config (as switchboard.yaml) and rules, copied into `to`."""
    shutil.copy(REPO / "switchboard.example.yaml", to / "switchboard.yaml")
    shutil.copytree(REPO / "rules", to / "rules")
    return to


def github_signature(body: bytes, secret: str = GITHUB_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_headers(
    body: bytes, *, event: str, delivery: str, secret: str = GITHUB_SECRET
) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": github_signature(body, secret),
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }


def post_issue(
    client: httpx.Client, delivery: str, body: bytes | None = None, *, expect: int = 202
) -> str:
    """Post a signed GitHub `issues` webhook (the shared `opened` fixture by default);
    the event id ingress answered. `client` is a TestClient or a real hub's httpx.Client."""
    body = fixture_path("github", "issues", "opened.json").read_bytes() if body is None else body
    response = client.post(
        "/hooks/github",
        content=body,
        headers=github_headers(body, event="issues", delivery=delivery),
    )
    assert response.status_code == expect, response.text
    return str(response.json()["id"])


def all_delivered(runtime: Runtime, event_id: str, count: int) -> bool:
    """`count` deliveries for the event, every one delivered."""
    rows = runtime.store.list_deliveries(inbound_id=event_id)
    return len(rows) == count and all(r.status == "delivered" for r in rows)


@contextmanager
def split_hub(
    settings: Settings, *, threads: int | None = None
) -> Iterator[tuple[TestClient, Runtime]]:
    """Ingress and a separate worker on one broker, as two processes would run them: a
    client on the ingress app and the worker's runtime; both stopped and closed after."""
    from hub.app import create_app
    from hub.pipeline.worker import WorkerService
    from hub.runtime import build_runtime

    ingress_rt = build_runtime(settings, load_plugins())
    worker_rt = build_runtime(settings, load_plugins())
    worker = WorkerService(worker_rt, threads=threads)
    worker.start()
    try:
        with TestClient(create_app(ingress_rt, run_worker=False)) as client:
            yield client, worker_rt
    finally:
        worker.stop()
        ingress_rt.close()
        worker_rt.close()


def deliver_five_issues_once(settings: Settings, prefix: str, *, timeout_s: float) -> list[str]:
    """Post five GitHub issues and a provider retry of the first through `split_hub`, and
    wait until each event's two deliveries are done; the event ids."""
    with split_hub(settings) as (client, worker_rt):
        ids = [post_issue(client, f"{prefix}-{n}") for n in range(5)]
        post_issue(client, f"{prefix}-0", expect=200)  # duplicate delivery: processed once
        wait_until(
            lambda: all(all_delivered(worker_rt, i, 2) for i in ids),
            timeout_s,
            f"all 5 {prefix} events delivered",
        )
    return ids


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll until `predicate()` holds; fail naming what never became true."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while time.monotonic() < deadline:
        if predicate():
            return
        pause.wait(0.02)
    if predicate():
        return
    raise AssertionError(f"after {timeout_s}s, still not true: {what}")


def wait_healthy(base: str, what: str, timeout_s: float = 20) -> None:
    """Poll `base`/healthz until a hub process answers 200 (it is starting up)."""

    def up() -> bool:
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(up, timeout_s, f"{what} answers /healthz")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DEFAULT_RULES = """
rules:
  - id: issue-opened
    on: github.issues.opened
    actions:
      - discord:
          channel: tasks
          content: "opened {{ event.id }}"
          embed:
            title: "#{{ event.data.fields.number }} {{ event.data.entity.title }}"
            url: "{{ event.data.entity.url }}"
            description: "Opened by {{ event.data.actor.name }}"
      - log:
          to: inbox
          message: "{{ event.type }} {{ event.id }}"
"""


def write_config(
    tmp_path: Path,
    *,
    broker_url: str = "embedded",
    namespace: str = "switchboard",
    rules: str = DEFAULT_RULES,
    max_body_bytes: int = 1048576,
    lease_seconds: float = 60,
    worker_threads: int = 4,
    http_timeout_seconds: float = 10,
    tasks_policy: str = "",
    extra_sources: str = "",
) -> Path:
    """A switchboard.yaml (github source, a discord + a log destination) and one rule file.

    `tasks_policy` is YAML lines (indented by 4) added to the discord destination `tasks`;
    `extra_sources` is YAML lines (indented by 2) added under `sources:`.
    """
    return config_with_rules(
        tmp_path,
        rules,
        f"""
server: {{max_body_bytes: {max_body_bytes}}}
store: {{url: "sqlite:///{tmp_path / "hub.db"}"}}
broker: {{url: "{broker_url}", namespace: "{namespace}"}}
worker:
  threads: {worker_threads}
  lease_seconds: {lease_seconds}
  http_timeout_seconds: {http_timeout_seconds}
sources:
  github: {{secret: {{env: SWITCHBOARD_SECRET_GITHUB}}}}
{extra_sources}
destinations:
  tasks:
    connector: discord
    webhook_url: {{env: TEST_DISCORD_WEBHOOK_URL, optional: true}}
{tasks_policy}
  inbox:
    connector: log
    path: inbox.log
""",
    )


def config_with_rules(folder: Path, rules: str, config: str, *, name: str = "test.yaml") -> Path:
    """`folder`/switchboard.yaml: `config` (YAML) reading its rules from `folder`/rules, where
    `rules` is the one file, `name`."""
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / name).write_text(rules, encoding="utf-8")
    path = folder / "switchboard.yaml"
    path.write_text(f"rules: {{path: rules}}\n{config}", encoding="utf-8")
    return path


@cache
def _plugins() -> Plugins:
    return load_plugins()


def rules_in(folder: Path, destinations: Mapping[str, Destination]) -> RuleSet:
    """The rule files in `folder`, loaded with every plugin's connectors; errors name the
    files relative to `folder` (`r.yaml:4:5: ...`)."""
    return load_ruleset(
        folder,
        connectors=_plugins().connectors,
        destinations=destinations,
        engine=TemplateEngine(),
        display_root=folder,
    )


def rules_error(folder: Path, destinations: Mapping[str, Destination]) -> str:
    """The ConfigError the rule files in `folder` are refused with."""
    with pytest.raises(ConfigError) as info:
        rules_in(folder, destinations)
    return str(info.value)


def make_settings(
    tmp_path: Path,
    *,
    discord_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    **kwargs: object,
) -> Settings:
    config = write_config(tmp_path, **kwargs)  # type: ignore[arg-type]
    env = {"SWITCHBOARD_SECRET_GITHUB": GITHUB_SECRET, **(environ or {})}
    if discord_url:
        env["TEST_DISCORD_WEBHOOK_URL"] = discord_url
    return load_settings(config, environ=env, plugins=load_plugins())


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


#: The real Redis on the test machine; tests isolate themselves with a Dramatiq namespace.
REDIS_URL_FOR_TESTS = "redis://127.0.0.1:6379/0"


def store_github_event(
    runtime: Runtime, delivery: str, body: bytes, *, event: str = "issues"
) -> str:
    """Store a GitHub webhook as ingress would have accepted it; its event id."""
    from hub.events import event_id_for
    from hub.store import NewInbound

    event_id = event_id_for("github", delivery)
    [outcome] = runtime.store.insert_events(
        [
            NewInbound(
                id=event_id,
                source="github",
                provider_delivery_id=delivery,
                received_at=runtime.clock.now().timestamp(),
                headers={"x-github-event": event, "content-type": "application/json"},
                body=body,
            )
        ]
    )
    assert not outcome.duplicate, f"delivery {delivery} was stored before"
    return event_id


def process_stored_batch(
    runtime: Runtime, event_ids: list[str], *, lease_s: float = 30
) -> BatchOutcome:
    """The worker's processing step over stored events, with the runtime's sources, rules,
    destinations and clock."""
    return process_events(
        event_ids,
        store=runtime.store,
        sources=runtime.sources,
        ruleset=runtime.rules.current,
        destinations=runtime.settings.destinations,
        clock=runtime.clock,
        lease_s=lease_s,
    )


def process_stored(
    runtime: Runtime, event_id: str, *, lease_s: float = 30
) -> ProcessOutcome | None:
    """`process_stored_batch` for one event; None if it is done or held elsewhere."""
    outcome = process_stored_batch(runtime, [event_id], lease_s=lease_s)
    return outcome.events[0] if outcome.events else None


def settle(runtime: Runtime, delivery_id: str, status: str) -> None:
    """Claim a delivery now and record its first attempt as `status`: `delivered` an ok 200,
    anything else (`dead`) Discord's 404 "gone", which becomes its last error."""
    from hub.store import AttemptRecord

    now = runtime.clock.now().timestamp()
    assert runtime.store.claim_delivery(delivery_id, now=now, lease_s=30) is not None
    ok = status == "delivered"
    runtime.store.finish_attempt(
        delivery_id,
        AttemptRecord(
            number=1,
            started_at=now,
            duration_ms=1,
            outcome="ok" if ok else "fail",
            status_code=200 if ok else 404,
            detail="" if ok else "gone",
        ),
        status=status,
        now=now,
        last_error=None if ok else "gone",
    )


def two_processed(
    runtime: Runtime, accept: Callable[[Runtime, str], str], first: str, second: str
) -> tuple[str, str]:
    """Two events for the same issue, stored by `accept` a second apart (the runtime is on
    a FakeClock) and processed in order: the second's deliveries wait behind the first's."""
    earlier = accept(runtime, first)
    runtime.clock.advance(1)  # type: ignore[attr-defined]
    later = accept(runtime, second)
    process_stored(runtime, earlier)
    process_stored(runtime, later)
    return earlier, later


def unreachable_discord_runtime(tmp_path: Path) -> Runtime:
    """The standard test config (github → discord + log) on a FakeClock, its Discord
    webhook pointing nowhere, leases of 30 s: for store and pipeline tests that send
    nothing themselves. The caller closes it."""
    from hub.clock import FakeClock
    from hub.runtime import build_runtime

    return build_runtime(
        make_settings(
            tmp_path, discord_url="http://127.0.0.1:9/api/webhooks/1/t", lease_seconds=30
        ),
        load_plugins(),
        clock=FakeClock(),
    )


@pytest.fixture(name="runtime")
def unreachable_discord_runtime_fixture(tmp_path: Path) -> Iterator[Runtime]:
    """`unreachable_discord_runtime` as the `runtime` fixture, closed afterwards. A module
    imports this function (noqa: F401) and its tests ask for `runtime`."""
    rt = unreachable_discord_runtime(tmp_path)
    yield rt
    rt.close()
