"""Batches out of messages: one consumer per queue feeds its stage's batches to the loop.

A broker message carries the ids of one ingress commit, and under moderate load that is
one or two events: a worker that ran one message at a time would handle events one by one,
with a thread hand-off, a store transaction and an acknowledgement each. So each queue
gets one consumer thread that takes every message the broker has ready (up to MAX_BATCH
ids), runs its stage once on the union of their ids as a task on the worker's event loop,
and acknowledges the lot together when the batch has run. An idle queue's first message
starts a batch at once: nothing waits to fill a batch.

At most `max_in_flight` batches per queue run at once, so one slow batch (a destination
that takes its timeout) does not stop the next. A batch that fails is acknowledged all
the same and logged: the store holds every row, and the sweeper hands out what a failed
or lost batch left behind (DESIGN §1).

Delayed messages (a retry's come-back, a group window's flush) wait in the broker's delay
queues; Dramatiq's own worker moves them to these queues when due (`DelayQueueWorker`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.broker import Consumer, MessageProxy
from dramatiq.errors import BrokerConnectionError

from hub.pipeline.queue import MAX_BATCH, BatchingRedisBroker

log = logging.getLogger("switchboard.worker")

#: Runs one batch of ids to the end (records and follow-up messages included).
RunBatch = Callable[[list[str]], Awaitable[None]]
#: Runs one message that is not batched (a group flush) with its arguments.
RunOne = Callable[..., None]


@dataclass(frozen=True, slots=True)
class Handlers:
    """What a queue's messages mean, by actor name: batched stages and single calls."""

    batched: Mapping[str, RunBatch]
    single: Mapping[str, RunOne]


class DelayQueueWorker(dramatiq.Worker):
    """Dramatiq's worker, consuming only the delay queues (`<queue>.DQ`).

    It keeps each delayed message until its time and then moves it to its queue, where a
    `BatchConsumer` takes it; the queues themselves are the batch consumers'.
    """

    def _add_consumer(self, queue_name: str, *, delay: bool = False) -> None:
        if delay:
            super()._add_consumer(queue_name, delay=True)


class BatchConsumer:
    """Consumes one queue in batches; `start`, then `stop` on shutdown."""

    def __init__(
        self,
        broker: dramatiq.Broker,
        queue_name: str,
        handlers: Handlers,
        loop: asyncio.AbstractEventLoop,
        *,
        max_in_flight: int,
        idle_poll_ms: int = 100,
    ) -> None:
        self.broker = broker
        self.queue_name = queue_name
        self._handlers = handlers
        self._loop = loop
        self._max_in_flight = max_in_flight
        self._idle_poll_ms = idle_poll_ms
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"switchboard-consume-{queue_name}", daemon=True
        )
        self.batches = 0
        self.messages = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stopping.set()
        self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                consumer = self.broker.consume(
                    self.queue_name,
                    prefetch=MAX_BATCH * self._max_in_flight,
                    timeout=self._idle_poll_ms,
                )
                try:
                    self._consume(consumer)
                finally:
                    consumer.close()
            except BrokerConnectionError as exc:  # the broker is down: try again shortly
                log.warning("queue %s: broker unavailable (%s); retrying", self.queue_name, exc)
                self._stopping.wait(1.0)
            except Exception:  # keep consuming; the sweeper covers what was lost
                log.exception("queue %s: consumer failed; restarting it", self.queue_name)
                self._stopping.wait(1.0)

    def _consume(self, consumer: Consumer) -> None:
        in_flight: list[tuple[concurrent.futures.Future[None], list[MessageProxy]]] = []
        try:
            while not self._stopping.is_set():
                in_flight = self._acknowledge_finished(consumer, in_flight)
                if len(in_flight) >= self._max_in_flight:
                    concurrent.futures.wait(
                        [f for f, _ in in_flight],
                        timeout=1.0,
                        return_when=concurrent.futures.FIRST_COMPLETED,
                    )
                    continue
                first = next(consumer)
                if first is None:
                    continue
                messages = [first]
                size = len(first.args)
                while size < MAX_BATCH and _has_ready(consumer):
                    message = next(consumer)
                    if message is None:
                        break
                    messages.append(message)
                    size += len(message.args)
                in_flight.append((self._submit(messages), messages))
        finally:
            # Wait (bounded) for what is running, so a clean stop acknowledges it.
            if in_flight:
                concurrent.futures.wait([f for f, _ in in_flight], timeout=10.0)
            self._acknowledge_finished(consumer, in_flight)

    def _submit(self, messages: list[MessageProxy]) -> concurrent.futures.Future[None]:
        self.batches += 1
        self.messages += len(messages)
        return asyncio.run_coroutine_threadsafe(self._run_messages(messages), self._loop)

    async def _run_messages(self, messages: list[MessageProxy]) -> None:
        batched: dict[str, list[str]] = {}
        for message in messages:
            if message.actor_name in self._handlers.batched:
                batched.setdefault(message.actor_name, []).extend(map(str, message.args))
            elif (one := self._handlers.single.get(message.actor_name)) is not None:
                try:
                    await asyncio.to_thread(one, *message.args)
                except Exception:  # that message fails alone; its row waits for the sweeper
                    log.exception("queue %s: %s failed", self.queue_name, message.actor_name)
            else:
                log.error(
                    "queue %s: no handler for actor %r; message dropped",
                    self.queue_name,
                    message.actor_name,
                )
        for actor_name, ids in batched.items():
            unique = list(dict.fromkeys(ids))
            try:
                await self._handlers.batched[actor_name](unique)
            except Exception:  # this batch fails; its rows wait in the store for the sweeper
                log.exception("queue %s: a batch of %d failed", self.queue_name, len(unique))

    def _acknowledge_finished(
        self,
        consumer: Consumer,
        in_flight: list[tuple[concurrent.futures.Future[None], list[MessageProxy]]],
    ) -> list[tuple[concurrent.futures.Future[None], list[MessageProxy]]]:
        # Each batch is looked at once: one that finishes while the others are being
        # acknowledged (a Redis round trip) stays in flight for the next round. Asking
        # `done()` twice dropped such a batch from both lists, and its messages were
        # never acknowledged: they filled the prefetch bound until the consumer starved.
        finished: list[MessageProxy] = []
        running: list[tuple[concurrent.futures.Future[None], list[MessageProxy]]] = []
        for future, messages in in_flight:
            if future.done():
                finished.extend(messages)
            else:
                running.append((future, messages))
        if finished:
            acknowledge(self.broker, consumer, finished)
        return running


def _has_ready(consumer: Consumer) -> bool:
    """Whether `next(consumer)` returns a message without a network round trip or a wait.

    Redis's consumer holds what it prefetched in `message_cache`; the in-process broker's
    is a `queue.Queue`. Other brokers: unknown, so a batch is their first message only.
    """
    cache: Any = getattr(consumer, "message_cache", None)
    if isinstance(cache, list):
        return bool(cache)
    queue: Any = getattr(consumer, "queue", None)
    qsize = getattr(queue, "qsize", None)
    return bool(qsize()) if callable(qsize) else False


def acknowledge(broker: dramatiq.Broker, consumer: Consumer, messages: list[MessageProxy]) -> None:
    """Acknowledge `messages`: pipelined in one round trip on Redis, one by one elsewhere."""
    if isinstance(broker, BatchingRedisBroker) and len(messages) > 1:
        broker.ack_many(consumer, messages)
        return
    for message in messages:
        consumer.ack(message)
