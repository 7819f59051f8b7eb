"""The broker edge: builds the Dramatiq broker and puts ids on queues.

The broker only carries ids; the store holds the truth (transactional outbox), so a
lost or duplicated message costs a retry, never an event. Dramatiq's own retries are
off: the delivery engine decides about retries from the provider's answer.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from uuid import uuid4

import dramatiq
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.brokers.redis import RedisBroker, _RedisConsumer
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import current_millis
from dramatiq.errors import ConnectionClosed
from dramatiq.middleware import Middleware, Retries, ShutdownNotifications, TimeLimit

from hub.errors import ConfigError

EVENTS_QUEUE = "events"
PROCESS_ACTOR = "process_event"
FLUSH_ACTOR = "flush_group"
#: Ids per message: a batch is the unit of work of each stage (DESIGN §1). Bounded, so
#: a backlog of 100k events never becomes one huge message or transaction.
MAX_BATCH = 64
#: Upper bound on one message's run; connector calls have their own, shorter timeouts.
MESSAGE_TIME_LIMIT_MS = 5 * 60 * 1000


def delivery_queue(connector: str) -> str:
    """One queue per connector, so a slow destination type never stalls the others."""
    return f"deliver.{connector}"


def delivery_actor(connector: str) -> str:
    return f"deliver_{connector}"


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
AMQP_SCHEMES = ("amqp://", "amqps://")
#: What Dramatiq accepts as a queue name; a RabbitMQ queue prefix must keep names valid.
_QUEUE_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9._-]*")


class NamespacedRabbitmqBroker(RabbitmqBroker):
    """Dramatiq's RabbitMQ broker plus the namespace its queue names start with.

    Redis keys carry the namespace inside the Redis broker; RabbitMQ queue names are
    global to a vhost, so `Queue` and the worker's actors put `queue_prefix` in front of
    every queue name instead: two hubs (or two test runs) share a server without a vhost.
    """

    def __init__(self, *, url: str, namespace: str, middleware: list[Middleware]) -> None:
        if not _QUEUE_PREFIX.fullmatch(namespace):
            raise ConfigError(
                f"broker.namespace {namespace!r} cannot start a RabbitMQ queue name",
                hint="use letters, digits, '.', '_' or '-', starting with a letter",
            )
        # confirm_delivery: RabbitMQ acknowledges every publish, so a message to a queue
        # that was deleted raises (and the queue is declared again) instead of vanishing.
        super().__init__(url=url, middleware=middleware, confirm_delivery=True)
        self.queue_prefix = f"{namespace}."


class BatchingRedisBroker(RedisBroker):
    """Dramatiq's Redis broker plus batched enqueues and acks, and consumers that block.

    `enqueue_many` puts a batch of messages in one round trip: ingress commits hundreds of
    events per batch under load, and one `enqueue` each cost a round trip per id.
    Dramatiq's own consumer polls; ours (`BlockingRedisConsumer`) waits in Redis.
    """

    #: False once Redis refused BLMOVE (before 6.2): consumers then sleep between fetches.
    _blocking_wait = True

    @property
    def consumer_class(self) -> type[BlockingRedisConsumer]:
        return BlockingRedisConsumer

    def wait_for_message(self, queue_name: str, timeout_ms: int) -> bool:
        """Block until `queue_name` holds a message or `timeout_ms` passes, taking nothing;
        False when Redis waited the whole timeout on an empty queue.

        The queue is the Redis list `<namespace>:<queue>` of message ids that Dramatiq's
        enqueue pushes to. BLMOVE from the list to its own head, left to left, blocks
        while the list is empty and moves nothing when it is not (a rotation onto the same
        place): a wait on the queue itself, which every enqueuer (Dramatiq's own, its
        requeues, the delay queues' mover) wakes without sending anything extra. Redis
        before 6.2 has no BLMOVE: the wait is then a short sleep, as Dramatiq's.
        """
        key = f"{self.namespace}:{queue_name}"
        if self._blocking_wait:
            try:
                timeout_s = max(timeout_ms, 1) / 1000  # Redis takes fractions of a second
                moved = self.client.blmove(key, key, timeout_s, "LEFT", "LEFT")  # type: ignore[arg-type]
                return moved is not None
            except redis.ResponseError:  # unknown command: an old Redis
                self._blocking_wait = False
        time.sleep(min(timeout_ms, 10) / 1000)  # noqa: TID251 - a broker poll, not the hub's clock
        return True

    def enqueue_many(self, messages: Sequence[dramatiq.Message[Any]]) -> None:
        """What `enqueue(message)` does for each message (no delay), pipelined.

        Mirrors `RedisBroker.enqueue` and `_dispatch` of dramatiq 2.x: the same dispatch
        script, arguments and middleware calls, sent in one pipeline. A test checks that
        what lands in Redis is what `enqueue` would have put there.
        """
        dispatch = self.scripts["dispatch"]
        pipe = self.client.pipeline(transaction=False)
        sent: list[dramatiq.Message[Any]] = []
        for original in messages:
            message = original.copy(options={"redis_message_id": str(uuid4())})
            self.emit_before("enqueue", message, None)
            args = [
                "enqueue",
                current_millis(),
                message.queue_name,
                self.broker_id,
                self.heartbeat_timeout,
                self.dead_message_ttl,
                self._should_do_maintenance("enqueue"),
                self._max_unpack_size(),  # type: ignore[no-untyped-call]
                message.options["redis_message_id"],
                message.encode(),
            ]
            pipe.evalsha(dispatch.sha, 1, self.namespace, *args)
            sent.append(message)
        _execute_scripts(self.client, pipe, dispatch)
        for message in sent:
            self.emit_after("enqueue", message, None)

    def ack_many(self, consumer: Any, messages: Sequence[Any]) -> None:
        """What `consumer.ack(message)` does for each message, pipelined.

        Mirrors `_RedisConsumer.ack` and `RedisBroker._dispatch("ack")` of dramatiq 2.x:
        the dispatch script's "ack" on the consumer's current queue (a delayed message is
        acknowledged on the queue it was moved to), then the consumer forgets the message.
        """
        dispatch = self.scripts["dispatch"]
        pipe = self.client.pipeline(transaction=False)
        for message in messages:
            args = [
                "ack",
                current_millis(),
                consumer.queue_name,
                self.broker_id,
                self.heartbeat_timeout,
                self.dead_message_ttl,
                self._should_do_maintenance("ack"),
                self._max_unpack_size(),  # type: ignore[no-untyped-call]
                message.options["redis_message_id"],
            ]
            pipe.evalsha(dispatch.sha, 1, self.namespace, *args)
        try:
            _execute_scripts(self.client, pipe, dispatch)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]  # dramatiq is untyped
        finally:
            for message in messages:
                consumer.queued_message_ids.discard(message.message_id)


def _execute_scripts(client: redis.Redis, pipe: Any, script: Any) -> None:
    """Run a pipeline of EVALSHAs of `script`, loading the script once if Redis lost it.

    redis-py's pipeline asks SCRIPT EXISTS before every execute when it is handed Script
    objects: a round trip more per batch. EVALSHA directly skips it; a Redis restarted
    since answers NOSCRIPT to every call of the (non-transactional) pipeline, nothing ran,
    and the pipeline is sent again after SCRIPT LOAD.
    """
    commands = list(pipe.command_stack)
    try:
        pipe.execute()
    except redis.exceptions.NoScriptError:
        script.sha = client.script_load(script.script)
        pipe.command_stack = commands
        pipe.execute()


#: An idle Redis consumer runs the fetch script at least this often. Dramatiq counts a
#: worker dead (and hands its unacknowledged messages to others) after its broker's
#: heartbeat_timeout, 60 s by default, without a dispatch.
IDLE_FETCH_S = 1.0


class BlockingRedisConsumer(_RedisConsumer):
    """Dramatiq's Redis consumer, waiting in Redis for a message instead of sleeping.

    Dramatiq's consumer sleeps 5 ms after an empty fetch, doubling up to its timeout, and
    its first message sets it back to 5 ms: under a steady trickle that is a fetch every
    few milliseconds per queue per worker, most of a worker's CPU at 50 events/s
    (docs/benchmarks.md). This one blocks on the queue (`wait_for_message`) until a
    message is there or the timeout passes (so heartbeats and shutdown checks still
    happen), fetches, and returns None if nothing came. Mirrors `_RedisConsumer.__next__`
    of dramatiq 2.x otherwise.

    The wait comes first: BLMOVE returns at once when the queue holds something, and it
    costs Redis and the client a fraction of the fetch script. Fetching before and after
    every wait, as this consumer did, ran fetch scripts that found nothing (one after
    each idle timeout, more for every consumer the same push woke): at 100 events/s Redis
    counted 12.8 scripts per event with it, 8.1 without. An idle consumer still fetches
    once per IDLE_FETCH_S: the fetch script is also its worker's heartbeat.
    """

    broker: BatchingRedisBroker
    #: When this consumer last ran the fetch script (time.monotonic()).
    _last_fetch = 0.0

    def __next__(self) -> MessageProxy | None:
        try:
            if not self.message_cache:
                arrived = self.broker.wait_for_message(self.queue_name, self.timeout)
                heartbeat_due = time.monotonic() - self._last_fetch >= IDLE_FETCH_S
                if not (arrived or heartbeat_due) or not self._fetch():
                    return None
            message = dramatiq.Message.decode(self.message_cache.pop(0))
            self.queued_message_ids.add(message.message_id)
            return MessageProxy(message)
        except redis.ConnectionError as exc:
            raise ConnectionClosed(exc) from None  # type: ignore[no-untyped-call]

    def _fetch(self) -> bool:
        """Fill the cache up to the prefetch bound; whether anything came."""
        room = self.prefetch - self.outstanding_message_count
        if room <= 0:  # everything prefetched is still being worked on: wait a little
            time.sleep(0.005)  # noqa: TID251 - a broker poll, not the hub's clock
            return False
        self._last_fetch = time.monotonic()
        fetched = self.broker.do_fetch(self.queue_name, room)
        self.message_cache = [data for data in fetched if data is not None]
        return bool(self.message_cache)


def make_broker(url: str, *, namespace: str) -> dramatiq.Broker:
    """'embedded' → an in-process broker; redis://… → Redis; amqp://… → RabbitMQ.

    Nothing is global. Every broker gets the same middleware, so a message behaves the
    same (time limit, no Dramatiq retries) whichever broker carries it.
    """
    middleware: list[Middleware] = [
        TimeLimit(time_limit=MESSAGE_TIME_LIMIT_MS),
        ShutdownNotifications(),
        Retries(max_retries=0),
    ]
    if url == "embedded":
        return StubBroker(middleware=middleware)
    if url.startswith(REDIS_SCHEMES):
        # RedisBroker.__init__ is unannotated in dramatiq.
        return BatchingRedisBroker(  # type: ignore[no-untyped-call]
            url=url, namespace=namespace, middleware=middleware
        )
    if url.startswith(AMQP_SCHEMES):
        # Connections open lazily (per thread, on first use): an unreachable server shows
        # up as a failed enqueue, which the sweeper makes good, not as a start-up crash.
        return NamespacedRabbitmqBroker(url=url, namespace=namespace, middleware=middleware)
    raise ConfigError(
        f"unsupported broker URL scheme in {url.split('@')[-1]!r}",
        hint="use 'embedded', redis://host:6379/0 or amqp://user:password@host:5672/vhost",
    )


def queue_prefix(broker: dramatiq.Broker) -> str:
    """What every queue name on `broker` starts with ('' except on RabbitMQ)."""
    return broker.queue_prefix if isinstance(broker, NamespacedRabbitmqBroker) else ""


class Queue:
    """Enqueue event and delivery ids on a broker.

    Only the events queue is declared up front. A worker consumes every declared queue
    (each with a polling consumer thread, plus one for its delay queue), and most hubs use
    two or three of the installed connectors: `on_first_use` lets the worker declare a
    connector's actor, and with it the queue, before the first delivery for it is sent.
    """

    def __init__(self, broker: dramatiq.Broker) -> None:
        self.broker = broker
        self.prefix = queue_prefix(broker)
        #: The events queue's name on this broker (the worker's actors consume it).
        self.events_queue = self.prefix + EVENTS_QUEUE
        # On RabbitMQ declaring is lazy: the queue (with its .DQ delay queue and .XQ
        # dead-letter queue) is created on the server at the first enqueue or consume.
        broker.declare_queue(self.events_queue)
        self._on_first_use: Callable[[str], None] | None = None
        self._used: set[str] = set()
        self._lock = threading.Lock()

    def on_first_use(self, hook: Callable[[str], None]) -> None:
        """Call `hook(connector)` once its queue is declared, before the first delivery for
        it is enqueued here; and now for those already used."""
        with self._lock:
            self._on_first_use = hook
            for connector in sorted(self._used):
                hook(connector)

    def use(self, connector: str) -> None:
        """Make sure `on_first_use` ran for `connector` (enqueueing calls this itself)."""
        if connector in self._used:
            return
        with self._lock:
            if connector not in self._used:
                # Declared first: a worker's consumer (the hook) consumes a declared queue.
                self.broker.declare_queue(self.delivery_queue(connector))
                if self._on_first_use is not None:
                    self._on_first_use(connector)
                self._used.add(connector)

    def delivery_queue(self, connector: str) -> str:
        """The delivery queue's name for `connector` on this broker."""
        return self.prefix + delivery_queue(connector)

    def enqueue_events(self, event_ids: Iterable[str]) -> None:
        """One message per batch of up to MAX_BATCH ids (the process stage's unit)."""
        self._enqueue_now(
            [_message(self.events_queue, PROCESS_ACTOR, *chunk) for chunk in _chunks(event_ids)]
        )

    def enqueue_deliveries(self, pending: Iterable[tuple[str, str]]) -> None:
        """(delivery id, connector) pairs, due now: one message per (connector, batch)."""
        by_connector: dict[str, list[str]] = {}
        for delivery_id, connector in pending:
            by_connector.setdefault(connector, []).append(delivery_id)
        for connector in by_connector:
            self.use(connector)
        self._enqueue_now(
            [
                self._delivery_message(connector, *chunk)
                for connector, ids in by_connector.items()
                for chunk in _chunks(ids)
            ]
        )

    def enqueue_deliveries_later(
        self, delivery_ids: Sequence[str], connector: str, *, delay_s: float
    ) -> None:
        """Deliveries of one connector to look at again in `delay_s`, batched likewise."""
        self.use(connector)
        for chunk in _chunks(delivery_ids):
            self.broker.enqueue(self._delivery_message(connector, *chunk), delay=_delay_ms(delay_s))

    def _enqueue_now(self, messages: list[dramatiq.Message[Any]]) -> None:
        """One round trip for the lot on Redis; one publish each elsewhere."""
        if len(messages) > 1 and isinstance(self.broker, BatchingRedisBroker):
            self.broker.enqueue_many(messages)
            return
        for message in messages:
            self.broker.enqueue(message)

    def enqueue_group_flush(self, group_id: str, *, delay_s: float) -> None:
        """Flush a `group` window when it closes (on the events queue).

        A delay goes through the broker's delay queue (`<queue>.DQ` on Redis and RabbitMQ);
        a worker holds the message until it is due and then moves it to the queue itself.
        """
        self.broker.enqueue(
            _message(self.events_queue, FLUSH_ACTOR, group_id), delay=_delay_ms(delay_s)
        )

    def enqueue_delivery(self, delivery_id: str, connector: str, *, delay_s: float = 0.0) -> None:
        self.enqueue_deliveries_later([delivery_id], connector, delay_s=delay_s)

    def _delivery_message(self, connector: str, *delivery_ids: str) -> dramatiq.Message[Any]:
        return _message(self.delivery_queue(connector), delivery_actor(connector), *delivery_ids)

    def close(self) -> None:
        self.broker.close()


def _message(queue_name: str, actor_name: str, *row_ids: str) -> dramatiq.Message[Any]:
    """A message whose arguments are row ids: the actor takes them as `*ids` (one id, as
    messages from before batches carry, is a batch of one)."""
    return dramatiq.Message(
        queue_name=queue_name, actor_name=actor_name, args=row_ids, kwargs={}, options={}
    )


def _chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for row_id in ids:
        chunk.append(row_id)
        if len(chunk) == MAX_BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _delay_ms(delay_s: float) -> int | None:
    """Milliseconds, rounded up: a message that wakes early is re-delayed, a late one is not."""
    if delay_s <= 0:
        return None
    return math.ceil(delay_s * 1000)
