"""Batched, pipelined enqueues on the real Redis: a message carries a batch of ids (at most
MAX_BATCH), shaped as Dramatiq's own `enqueue` leaves it, in one round trip, and a
Dramatiq worker consumes every id of every batch."""

from __future__ import annotations

import json
import threading

import dramatiq
import pytest
import redis

from hub.pipeline.queue import (
    EVENTS_QUEUE,
    MAX_BATCH,
    PROCESS_ACTOR,
    BatchingRedisBroker,
    Queue,
    make_broker,
)
from tests.support import REDIS_URL_FOR_TESTS as REDIS_URL

pytestmark = pytest.mark.redis


def _queued(client: redis.Redis, namespace: str, queue: str) -> list[dict[str, object]]:
    """The messages waiting on `queue`, in order, as Dramatiq stored them."""
    ids = client.lrange(f"{namespace}:{queue}", 0, -1)
    bodies = client.hmget(f"{namespace}:{queue}.msgs", ids) if ids else []
    return [json.loads(body) for body in bodies if body is not None]


def test_a_batch_lands_as_single_enqueues_would(redis_namespace: str) -> None:
    broker = make_broker(REDIS_URL, namespace=redis_namespace)
    assert isinstance(broker, BatchingRedisBroker)
    queue = Queue(broker)
    client = redis.Redis.from_url(REDIS_URL)
    try:
        queue.enqueue_events(["single"])
        queue.enqueue_events([f"ev-{i}" for i in range(150)])
        queue.enqueue_deliveries([("d-1", "discord"), ("l-1", "log"), ("d-2", "discord")])
        events = _queued(client, redis_namespace, EVENTS_QUEUE)
        deliveries = _queued(client, redis_namespace, "deliver.discord")
    finally:
        client.close()
        queue.close()
    ids = [f"ev-{i}" for i in range(150)]
    # One message per batch of at most MAX_BATCH ids, in order.
    assert [m["args"] for m in events] == [
        ["single"],
        ids[:MAX_BATCH],
        ids[MAX_BATCH : 2 * MAX_BATCH],
        ids[2 * MAX_BATCH :],
    ]
    single, batched = events[0], events[1]
    # Same shape as Dramatiq's own enqueue: queue, actor, a fresh Redis id per message.
    assert set(single) == set(batched)
    assert batched["queue_name"] == EVENTS_QUEUE
    assert batched["actor_name"] == PROCESS_ACTOR
    assert set(single["options"]) == set(batched["options"]) == {"redis_message_id"}
    assert len({m["options"]["redis_message_id"] for m in events}) == 4  # type: ignore[index]
    # One message per (connector, batch).
    assert [m["args"] for m in deliveries] == [["d-1", "d-2"]]
    assert {m["actor_name"] for m in deliveries} == {"deliver_discord"}


def test_a_worker_runs_every_message_of_a_batch(redis_namespace: str) -> None:
    broker = make_broker(REDIS_URL, namespace=redis_namespace)
    queue = Queue(broker)
    seen: list[str] = []
    done = threading.Event()
    wanted = [f"ev-{i}" for i in range(200)]

    def process(*event_ids: str) -> None:
        assert len(event_ids) <= MAX_BATCH
        seen.extend(event_ids)
        if len(seen) == len(wanted):
            done.set()

    dramatiq.actor(broker=broker, actor_name=PROCESS_ACTOR, queue_name=EVENTS_QUEUE)(process)
    worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=50)
    worker.start()
    try:
        queue.enqueue_events(wanted)
        assert done.wait(20), f"{len(seen)} of {len(wanted)} ran"
    finally:
        worker.stop()
        queue.close()
    assert sorted(seen) == sorted(wanted)
