"""The batch consumer: messages become bounded batches, acknowledged once they have run."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker

from hub.pipeline.consumer import BatchConsumer, Handlers
from hub.pipeline.queue import EVENTS_QUEUE, FLUSH_ACTOR, MAX_BATCH, PROCESS_ACTOR, Queue
from hub.pipeline.worker import LoopThread
from tests.support import wait_until


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    thread = LoopThread()
    thread.start()
    assert thread.loop is not None
    yield thread.loop
    thread.stop()


class Stage:
    """Records each batch it is given; holds them until released, to count what overlaps."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.running = 0
        self.most_running = 0
        self.release = threading.Event()
        self.release.set()
        self.flushed: list[str] = []

    async def run(self, ids: list[str]) -> None:
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        self.batches.append(ids)
        await asyncio.to_thread(self.release.wait, 30)  # released from the test's thread
        self.running -= 1

    def flush(self, group_id: str) -> None:
        self.flushed.append(group_id)


def _consumer(
    broker: dramatiq.Broker, loop: asyncio.AbstractEventLoop, stage: Stage, in_flight: int = 2
) -> BatchConsumer:
    return BatchConsumer(
        broker,
        EVENTS_QUEUE,
        Handlers(batched={PROCESS_ACTOR: stage.run}, single={FLUSH_ACTOR: stage.flush}),
        loop,
        max_in_flight=in_flight,
        idle_poll_ms=10,
    )


def test_a_backlog_of_single_id_messages_runs_as_bounded_batches(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # given 1,000 messages of one id each waiting (ingress commits of one webhook each)
    broker = StubBroker()
    queue = Queue(broker)
    wanted = [f"ev-{n}" for n in range(1000)]
    for event_id in wanted:
        queue.enqueue_events([event_id])
    stage = Stage()
    consumer = _consumer(broker, loop, stage)
    # when the consumer drains them
    consumer.start()
    try:
        wait_until(lambda: sum(map(len, stage.batches)) == 1000, 20, "every id ran")
        wait_until(lambda: broker.queues[EVENTS_QUEUE].unfinished_tasks == 0, 10, "all acked")
    finally:
        consumer.stop()
    # then every id ran once, in batches of at most MAX_BATCH, far fewer than messages
    ran = [i for batch in stage.batches for i in batch]
    assert sorted(ran) == sorted(wanted)
    assert max(len(b) for b in stage.batches) <= MAX_BATCH
    assert len(stage.batches) <= 1000 // MAX_BATCH * 3
    assert stage.most_running <= 2


def test_batches_in_flight_are_bounded_while_the_stage_is_slow(
    loop: asyncio.AbstractEventLoop,
) -> None:
    broker = StubBroker()
    queue = Queue(broker)
    for n in range(500):
        queue.enqueue_events([f"ev-{n}"])
    stage = Stage()
    stage.release.clear()  # the stage hangs: batches pile up at most to the bound
    consumer = _consumer(broker, loop, stage, in_flight=3)
    consumer.start()
    try:
        wait_until(lambda: stage.running == 3, 10, "three batches running")
        held = sum(map(len, stage.batches))
        # unacknowledged work is bounded: three batches of at most MAX_BATCH ids
        assert held <= 3 * MAX_BATCH
        assert broker.queues[EVENTS_QUEUE].unfinished_tasks >= 500 - held
        stage.release.set()
        wait_until(lambda: sum(map(len, stage.batches)) == 500, 20, "the rest ran")
    finally:
        stage.release.set()
        consumer.stop()
    assert stage.most_running == 3


def test_a_group_flush_runs_alone_beside_the_batch(loop: asyncio.AbstractEventLoop) -> None:
    broker = StubBroker()
    queue = Queue(broker)
    queue.enqueue_events(["ev-1", "ev-2"])
    queue.enqueue_group_flush("group-1", delay_s=0)
    stage = Stage()
    consumer = _consumer(broker, loop, stage)
    consumer.start()
    try:
        wait_until(lambda: stage.flushed == ["group-1"], 10, "the flush ran")
        wait_until(lambda: sum(map(len, stage.batches)) == 2, 10, "the events ran")
    finally:
        consumer.stop()
    assert stage.batches == [["ev-1", "ev-2"]]


class _AckingConsumer:
    """A broker consumer that records acks; the first ack finishes another batch, as a
    batch on the event loop may while the acknowledgement's round trip is on its way."""

    def __init__(self, finishes_meanwhile: concurrent.futures.Future[None]) -> None:
        self.acked: list[MessageProxy] = []
        self._meanwhile = finishes_meanwhile

    def ack(self, message: MessageProxy) -> None:
        self.acked.append(message)
        if not self._meanwhile.done():
            self._meanwhile.set_result(None)


def test_a_batch_finishing_while_others_are_acknowledged_is_acknowledged_next_round(
    loop: asyncio.AbstractEventLoop,
) -> None:
    # given two batches in flight: the first done, the second finishing during the ack
    consumer = _consumer(StubBroker(), loop, Stage())
    first: concurrent.futures.Future[None] = concurrent.futures.Future()
    first.set_result(None)
    second: concurrent.futures.Future[None] = concurrent.futures.Future()
    one, two = (
        MessageProxy(dramatiq.Message(EVENTS_QUEUE, PROCESS_ACTOR, (n,), {}, {})) for n in "ab"
    )
    broker_consumer = _AckingConsumer(finishes_meanwhile=second)
    # when the consumer acknowledges what finished
    in_flight = consumer._acknowledge_finished(
        broker_consumer,  # type: ignore[arg-type]
        [(first, [one]), (second, [two])],
    )
    # then the first is acknowledged and the second is still tracked, not dropped...
    assert broker_consumer.acked == [one]
    assert in_flight == [(second, [two])]
    # ...so the next round acknowledges it: no message is left unacknowledged for good
    assert consumer._acknowledge_finished(broker_consumer, in_flight) == []  # type: ignore[arg-type]
    assert broker_consumer.acked == [one, two]
