"""A private queue namespace on the real RabbitMQ (skip locally when it is down, fail in CI).

A test module imports the fixture function, and its tests ask for `rabbitmq_namespace`:

    from tests.rabbitmq import rabbitmq_queues  # noqa: F401  (the rabbitmq_namespace fixture)

No vhost is created: the hub prefixes its queue names with the broker namespace on
RabbitMQ, so a unique namespace is a private set of queues, deleted afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pika
import pika.exceptions
import pytest

from hub.pipeline.queue import EVENTS_QUEUE, delivery_queue
from hub.plugins import load_plugins
from tests.support import in_ci

#: The server on the test machine (the default guest user may log in from localhost).
RABBITMQ_URL_FOR_TESTS = "amqp://guest:guest@127.0.0.1:5672/%2F"

START_HINT = "start it with: rabbitmq-server -detached"


def _connect() -> pika.BlockingConnection:
    params = pika.URLParameters(RABBITMQ_URL_FOR_TESTS)
    params.socket_timeout = 3
    params.blocked_connection_timeout = 3
    return pika.BlockingConnection(params)


def hub_queue_names(namespace: str) -> list[str]:
    """Every queue a hub with this namespace may declare: each with its .DQ and .XQ."""
    logical = [EVENTS_QUEUE, *(delivery_queue(c) for c in load_plugins().connectors)]
    return [f"{namespace}.{name}{suffix}" for name in logical for suffix in ("", ".DQ", ".XQ")]


@pytest.fixture(name="rabbitmq_namespace")
def rabbitmq_queues() -> Iterator[str]:
    """A unique broker namespace on the real RabbitMQ; its queues are deleted afterwards."""
    try:
        connection = _connect()
    except pika.exceptions.AMQPError as exc:
        message = f"RabbitMQ at 127.0.0.1:5672 is not answering: {exc!r}"
        if in_ci():
            pytest.fail(f"{message}; it is required in CI ({START_HINT})")
        pytest.skip(f"{message} ({START_HINT})")
    connection.close()
    namespace = f"sbtest-{uuid.uuid4().hex[:12]}"
    try:
        yield namespace
    finally:
        connection = _connect()
        channel = connection.channel()
        for name in hub_queue_names(namespace):
            channel.queue_delete(name)  # deleting a queue that was never declared is a no-op
        connection.close()
