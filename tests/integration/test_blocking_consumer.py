"""The Redis consumer waits in Redis instead of polling, and the pipelined scripts survive
a Redis that lost them."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis
from dramatiq.broker import MessageProxy

from hub.pipeline.queue import (
    EVENTS_QUEUE,
    BatchingRedisBroker,
    BlockingRedisConsumer,
    Queue,
)
from tests.support import (
    REDIS_URL_FOR_TESTS,
    wait_until,
)

pytestmark = pytest.mark.redis


@pytest.fixture
def broker(redis_namespace: str) -> Any:
    made = BatchingRedisBroker(url=REDIS_URL_FOR_TESTS, namespace=redis_namespace)  # type: ignore[no-untyped-call]
    made.declare_queue(EVENTS_QUEUE)
    yield made
    made.close()


def _blocked_on(client: redis.Redis, command: str) -> bool:
    clients: list[dict[str, Any]] = client.client_list()
    return any(c.get("cmd") == command for c in clients)


def test_one_next_waits_in_redis_and_returns_what_is_enqueued_meanwhile(
    broker: BatchingRedisBroker,
) -> None:
    consumer = broker.consume(EVENTS_QUEUE, prefetch=8, timeout=20_000)
    got: list[MessageProxy | None] = []
    reader = threading.Thread(target=lambda: got.append(next(consumer)), daemon=True)
    reader.start()
    client = redis.Redis.from_url(REDIS_URL_FOR_TESTS)
    try:
        # Dramatiq's consumer would have slept a few ms and returned None by now; this one
        # sits in BLMOVE on the queue until something arrives.
        wait_until(lambda: _blocked_on(client, "blmove"), 10, "the consumer blocked in Redis")
        Queue(broker).enqueue_events(["ev-1", "ev-2"])
        reader.join(10)
    finally:
        client.close()
    assert not reader.is_alive()
    assert len(got) == 1
    assert got[0] is not None
    assert list(got[0].args) == ["ev-1", "ev-2"]


def test_the_wait_takes_nothing_off_the_queue(broker: BatchingRedisBroker) -> None:
    Queue(broker).enqueue_events(["ev-1"])
    queued_before = broker.client.lrange(f"{broker.namespace}:{EVENTS_QUEUE}", 0, -1)
    broker.wait_for_message(EVENTS_QUEUE, 1000)  # returns at once: a message is there
    assert broker.client.lrange(f"{broker.namespace}:{EVENTS_QUEUE}", 0, -1) == queued_before
    consumer = broker.consume(EVENTS_QUEUE, prefetch=8, timeout=100)
    message = next(consumer)
    assert message is not None
    assert list(message.args) == ["ev-1"]


def test_pipelined_enqueues_and_acks_load_the_script_again_after_redis_lost_it(
    broker: BatchingRedisBroker,
) -> None:
    queue = Queue(broker)
    queue.enqueue_events(["warm"])  # the dispatch script is loaded now
    broker.client.script_flush()  # as a Redis restart leaves it
    queue.enqueue_events([f"ev-{i}" for i in range(100)])  # two messages, one pipeline
    consumer = broker.consume(EVENTS_QUEUE, prefetch=8, timeout=100)
    messages = [next(consumer) for _ in range(3)]
    assert [len(m.args) for m in messages if m is not None] == [1, 64, 36]
    broker.client.script_flush()
    broker.ack_many(consumer, [m for m in messages if m is not None])
    assert broker.client.zcard(f"{broker.namespace}:{EVENTS_QUEUE}.acks") == 0
    assert isinstance(consumer, BlockingRedisConsumer)
    assert consumer.queued_message_ids == set()


def _counting_fetches(broker: BatchingRedisBroker, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the broker's fetch scripts (they still run against the real Redis)."""
    calls: list[int] = []
    real = broker.do_fetch

    def counted(queue_name: str, prefetch: int) -> Any:
        calls.append(prefetch)
        return real(queue_name, prefetch)

    monkeypatch.setattr(broker, "do_fetch", counted)
    return calls


def test_an_idle_consumer_fetches_once_per_heartbeat_not_after_every_wait(
    broker: BatchingRedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetches = _counting_fetches(broker, monkeypatch)
    consumer = broker.consume(EVENTS_QUEUE, prefetch=8, timeout=20)
    assert [next(consumer) for _ in range(10)] == [None] * 10  # ten 20-ms waits in Redis
    assert len(fetches) == 1  # the first wait's heartbeat; before, two fetches per wait
    Queue(broker).enqueue_events(["ev-1"])
    message = next(consumer)
    assert message is not None
    assert list(message.args) == ["ev-1"]
    assert len(fetches) == 2  # the wait saw the message, one fetch took it


def test_an_idle_consumer_still_fetches_when_its_heartbeat_is_due(
    broker: BatchingRedisBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetches = _counting_fetches(broker, monkeypatch)
    consumer = broker.consume(EVENTS_QUEUE, prefetch=8, timeout=20)
    assert next(consumer) is None
    monkeypatch.setattr("hub.pipeline.queue.IDLE_FETCH_S", 0.0)
    assert next(consumer) is None
    assert len(fetches) == 2
