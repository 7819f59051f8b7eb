"""The broker edge: builds the Dramatiq broker and puts ids on queues.

The broker only carries ids; the store holds the truth (transactional outbox), so a
lost or duplicated message costs a retry, never an event. Dramatiq's own retries are
off: the delivery engine decides about retries from the provider's answer.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries, ShutdownNotifications, TimeLimit

from hub.errors import ConfigError

EVENTS_QUEUE = "events"
PROCESS_ACTOR = "process_event"
FLUSH_ACTOR = "flush_group"
#: Upper bound on one message's run; connector calls have their own, shorter timeouts.
MESSAGE_TIME_LIMIT_MS = 5 * 60 * 1000


def delivery_queue(connector: str) -> str:
    """One queue per connector, so a slow destination type never stalls the others."""
    return f"deliver.{connector}"


def delivery_actor(connector: str) -> str:
    return f"deliver_{connector}"


def make_broker(url: str, *, namespace: str) -> dramatiq.Broker:
    """'embedded' → an in-process broker; redis://… → Redis. Nothing is global."""
    middleware = [
        TimeLimit(time_limit=MESSAGE_TIME_LIMIT_MS),
        ShutdownNotifications(),
        Retries(max_retries=0),
    ]
    if url == "embedded":
        return StubBroker(middleware=middleware)
    if url.startswith(("redis://", "rediss://", "unix://")):
        # RedisBroker.__init__ is unannotated in dramatiq.
        return RedisBroker(  # type: ignore[no-untyped-call]
            url=url, namespace=namespace, middleware=middleware
        )
    raise ConfigError(
        f"unsupported broker URL scheme in {url.split('@')[-1]!r}",
        hint="use 'embedded' or redis://host:6379/0",
    )


class Queue:
    """Enqueue event and delivery ids on a broker whose queues it declares up front."""

    def __init__(self, broker: dramatiq.Broker, connectors: Iterable[str]) -> None:
        self.broker = broker
        self.connectors = tuple(connectors)
        broker.declare_queue(EVENTS_QUEUE)
        for name in self.connectors:
            broker.declare_queue(delivery_queue(name))

    def enqueue_events(self, event_ids: Iterable[str]) -> None:
        for event_id in event_ids:
            self.broker.enqueue(
                dramatiq.Message(
                    queue_name=EVENTS_QUEUE,
                    actor_name=PROCESS_ACTOR,
                    args=(event_id,),
                    kwargs={},
                    options={},
                )
            )

    def enqueue_group_flush(self, group_id: str, *, delay_s: float) -> None:
        """Flush a `group` window when it closes (on the events queue)."""
        self.broker.enqueue(
            dramatiq.Message(
                queue_name=EVENTS_QUEUE,
                actor_name=FLUSH_ACTOR,
                args=(group_id,),
                kwargs={},
                options={},
            ),
            delay=_delay_ms(delay_s),
        )

    def enqueue_delivery(self, delivery_id: str, connector: str, *, delay_s: float = 0.0) -> None:
        message: dramatiq.Message[None] = dramatiq.Message(
            queue_name=delivery_queue(connector),
            actor_name=delivery_actor(connector),
            args=(delivery_id,),
            kwargs={},
            options={},
        )
        self.broker.enqueue(message, delay=_delay_ms(delay_s))

    def close(self) -> None:
        self.broker.close()


def _delay_ms(delay_s: float) -> int | None:
    """Milliseconds, rounded up: a message that wakes early is re-delayed, a late one is not."""
    if delay_s <= 0:
        return None
    return math.ceil(delay_s * 1000)
