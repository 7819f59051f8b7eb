"""RabbitMQ as the broker: webhook in → worker → fake Discord, and delayed messages (.DQ).

The ingress app and the worker each build their own runtime (their own broker
connections), as two processes would; the queues live in a private namespace.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from hub.config import Settings
from hub.errors import ConfigError
from hub.pipeline.queue import NamespacedRabbitmqBroker, Queue, make_broker
from hub.pipeline.ratelimit import Limit
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from tests.fakes.discord import FakeDiscord
from tests.rabbitmq import (
    RABBITMQ_URL_FOR_TESTS,
    rabbitmq_queues,  # noqa: F401  (the rabbitmq_namespace fixture)
)
from tests.support import (
    REDIS_URL_FOR_TESTS,
    all_delivered,
    deliver_five_issues_once,
    free_port,
    make_settings,
    post_issue,
    split_hub,
    wait_until,
)

pytestmark = pytest.mark.rabbitmq

GROUP_RULES = """
rules:
  - id: digest
    on: github.issues.*
    group: {key: "{{ event.data.fields.repository }}", window: 2s}
    actions:
      - discord:
          channel: tasks
          content: "{{ group.count }} issue events"
"""


def _settings(tmp_path: Path, url: str, namespace: str, **kwargs: object) -> Settings:
    return make_settings(
        tmp_path, discord_url=url, broker_url=RABBITMQ_URL_FOR_TESTS, namespace=namespace, **kwargs
    )


def test_an_amqp_url_gives_a_rabbitmq_broker_whose_queues_carry_the_namespace() -> None:
    broker = make_broker(RABBITMQ_URL_FOR_TESTS, namespace="hub-a")
    try:
        assert isinstance(broker, NamespacedRabbitmqBroker)
        queue = Queue(broker)
        assert queue.events_queue == "hub-a.events"
        assert queue.delivery_queue("discord") == "hub-a.deliver.discord"
        # Declared lazily: nothing is sent to the server before the first enqueue; a
        # connector's queue is declared by the worker that sends with it.
        assert broker.get_declared_queues() == {"hub-a.events"}
        assert "hub-a.events.DQ" in broker.get_declared_delay_queues()
    finally:
        broker.close()


def test_a_namespace_that_cannot_prefix_a_queue_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="namespace 'tenant:1'"):
        make_broker(RABBITMQ_URL_FOR_TESTS, namespace="tenant:1")


def test_events_go_end_to_end_through_rabbitmq_exactly_once(
    tmp_path: Path, discord: tuple[FakeDiscord, str], rabbitmq_namespace: str
) -> None:
    fake, url = discord
    settings = _settings(tmp_path, url, rabbitmq_namespace)
    ids = deliver_five_issues_once(settings, "amqp", timeout_s=20)
    contents = sorted(r.body["content"] for r in fake.received)
    assert contents == sorted(f"opened {i}" for i in ids)


def test_a_retry_after_travels_through_the_delay_queue_and_is_kept(
    tmp_path: Path, discord: tuple[FakeDiscord, str], rabbitmq_namespace: str
) -> None:
    # given Discord answers the first send with a 429 asking for 1.5 s: longer than the
    # engine waits in process, so the retry is a delayed message on deliver.discord.DQ
    fake, url = discord
    fake.rate_limit_next(1.5)
    with split_hub(_settings(tmp_path, url, rabbitmq_namespace)) as (client, worker_rt):
        event_id = post_issue(client, "amqp-429")
        wait_until(lambda: all_delivered(worker_rt, event_id, 2), 20, "delivered after the 429")
    assert [r.status for r in fake.received] == [429, 200]
    waited = fake.received[1].at - fake.received[0].at
    assert 1.5 <= waited <= 1.5 * 1.10 + 0.5, f"asked 1.5s, retried after {waited:.3f}s"


def test_a_group_flush_is_a_delayed_message_that_arrives_when_the_window_closes(
    tmp_path: Path, discord: tuple[FakeDiscord, str], rabbitmq_namespace: str
) -> None:
    fake, url = discord
    settings = _settings(tmp_path, url, rabbitmq_namespace, rules=GROUP_RULES)
    # Several threads: events for one key processed at the same moment share one group.
    with split_hub(settings, threads=4) as (client, _):
        opened = time.monotonic()
        for n in range(3):
            post_issue(client, f"amqp-group-{n}")
        wait_until(lambda: len(fake.ok()) >= 1, 20, "the group's digest was sent")
    [digest] = fake.received
    assert digest.body["content"] == "3 issue events"
    # The flush came from the delay queue, not early and not only via the sweeper (60 s).
    assert 2.0 <= digest.at - opened <= 10.0


def test_with_rabbitmq_down_ingress_still_stores_and_accepts_the_webhook(tmp_path: Path) -> None:
    # Nothing listens on this port: every publish fails, fast (connection refused).
    settings = make_settings(tmp_path, broker_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F")
    runtime = build_runtime(settings, load_plugins())  # connections open lazily: no error
    try:
        with TestClient(create_app(runtime, run_worker=False)) as client:
            event_id = post_issue(client, "amqp-down-1")
        row = runtime.store.get_event(event_id)
        assert row is not None
        assert row.status == "received"  # the sweeper enqueues it once the broker is back
    finally:
        runtime.close()


@pytest.mark.redis
def test_with_a_limits_url_every_process_draws_on_one_rate_limit_budget(
    tmp_path: Path, redis_namespace: str
) -> None:
    """RabbitMQ carries no counters: `broker.limits_url` (SWITCHBOARD_LIMITS_URL) puts the
    rate limits and breakers of all processes in one Redis; without it each has its own."""
    one_per_minute = [Limit(1, 60.0)]

    def two_processes(environ: dict[str, str]) -> tuple[Runtime, Runtime]:
        settings = make_settings(
            tmp_path, broker_url=RABBITMQ_URL_FOR_TESTS, namespace=redis_namespace, environ=environ
        )
        return build_runtime(settings, load_plugins()), build_runtime(settings, load_plugins())

    first, second = two_processes({"SWITCHBOARD_LIMITS_URL": REDIS_URL_FOR_TESTS})
    try:
        assert first.limiter.acquire("discord:tasks", one_per_minute) == 0
        assert second.limiter.acquire("discord:tasks", one_per_minute) > 50  # shared: spent
    finally:
        first.close()
        second.close()
    first, second = two_processes({})
    try:
        assert first.limiter.acquire("discord:other", one_per_minute) == 0
        assert second.limiter.acquire("discord:other", one_per_minute) == 0  # per process
    finally:
        first.close()
        second.close()
