"""A worker consumes only the delivery queues its hub uses, and starts consuming another
one before it sends the first delivery there: nothing waits on a queue nobody reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.pipeline.queue import delivery_queue
from hub.pipeline.worker import WorkerService
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from hub.store.deliveries import NewDelivery
from tests.support import REDIS_URL_FOR_TESTS, make_settings, wait_until

pytestmark = pytest.mark.redis


def _runtime(tmp_path: Path, namespace: str) -> Runtime:
    settings = make_settings(
        tmp_path,
        discord_url="http://127.0.0.1:9/api/webhooks/1/t",
        broker_url=REDIS_URL_FOR_TESTS,
        namespace=namespace,
    )
    return build_runtime(settings, load_plugins())


def _pending(rt: Runtime, delivery_id: str, connector: str) -> None:
    """A delivery made elsewhere (a replay, or rules that changed since)."""
    rt.store.add_deliveries(
        f"inbound-{delivery_id}",
        [
            NewDelivery(
                id=delivery_id,
                inbound_id=f"inbound-{delivery_id}",
                event_id=f"event-{delivery_id}",
                rule_id="elsewhere",
                action_index=0,
                connector=connector,
                operation=None,
                destination=None,
                params={"text": "hello"},
                idempotency_key=f"key-{delivery_id}",
            )
        ],
        now=rt.clock.now().timestamp(),
    )


def _consumed(rt: Runtime) -> set[str]:
    return rt.queue.broker.get_declared_queues()


def test_a_worker_consumes_its_hubs_connectors_and_others_on_first_use(
    tmp_path: Path, redis_namespace: str
) -> None:
    rt = _runtime(tmp_path, redis_namespace)
    _pending(rt, "left-over", "toggl")  # open before the worker starts
    worker = WorkerService(rt, threads=1)
    worker.start()
    try:
        # Destinations (discord, log) and open deliveries (toggl); not the other seven.
        assert _consumed(rt) == {
            "events",
            delivery_queue("discord"),
            delivery_queue("log"),
            delivery_queue("toggl"),
        }
        _pending(rt, "new", "slack")
        rt.queue.enqueue_deliveries([("new", "slack")])
        assert delivery_queue("slack") in _consumed(rt)
        # Consumed and attempted (slack without a destination fails: the point is that a
        # worker read the message, not that Slack answered).
        wait_until(
            lambda: (row := rt.store.get_delivery("new")) is not None and row.attempts >= 1,
            15,
            "the slack delivery attempted",
        )
    finally:
        worker.stop()
        rt.close()
