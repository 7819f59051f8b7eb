"""Worker: Dramatiq actors (a batch of ids in, plain functions do the work) and the sweeper.

Actors stay tiny: they call `hub.pipeline.process.process_events` and
`DeliveryEngine.deliver_batch` for the batch of ids their message carries, and enqueue
what those return. A batch's sends run as tasks on the process's one event loop; every
store write of the process goes through its one writer thread (hub/pipeline/writer.py).
The composition hands the service its dependencies (`WorkerDeps`: hub/runtime.py's
`Runtime` is one) and runs it: `switchboard worker`, or `serve`'s in-process worker.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import threading
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import httpx

from connectors.base import Connector, ConnectorEnv
from hub.events import Event
from hub.pipeline.consumer import BatchConsumer, DelayQueueWorker, Handlers
from hub.pipeline.deliver import JITTER_ALLOWANCE_S, WAKE_EARLY_S, DeliveryEngine
from hub.pipeline.http import make_client
from hub.pipeline.process import flush_group, process_events
from hub.pipeline.queries import run_queries
from hub.pipeline.queue import FLUSH_ACTOR, PROCESS_ACTOR, delivery_actor
from hub.pipeline.ratelimit import Breaker, CachedBreaker, Limit, Limiter, MemoryBreaker
from hub.pipeline.rerender import Rerenderer
from hub.pipeline.writer import StoreWriter
from hub.plugins import Plugins
from hub.rules import Rule, RuleSetRef
from hub.rules.categories import Categories
from hub.schedule.upkeep import UpkeepDeps
from hub.sources.base import EnrichContext, EnrichingSource
from hub.store import windows
from hub.store.snapshots import StoreSnapshots

log = logging.getLogger("switchboard.worker")
#: Event batches processed at once: one normalizes and renders while another waits on
#: the store or an enrichment.
PROCESS_BATCHES_IN_FLIGHT = 2

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (the default install has it), else asyncio's own loop.

    The worker's loop carries every send: on asyncio's loop its socket callbacks were a
    tenth of a worker's CPU (benchmarks/drain.py --profile).
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class LoopThread:
    """An asyncio loop in a daemon thread; `run` blocks the calling thread for a result."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.loop = new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="switchboard-loop", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = None) -> T:
        if self.loop is None:
            coro.close()
            raise RuntimeError("LoopThread.run() before start()")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def stop(self) -> None:
        if self.loop is None or self._thread is None:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        self.loop.close()
        self.loop = None


class WorkerDeps(UpkeepDeps, Protocol):
    """What a worker process runs on, built once by the composition (its `Runtime`):
    upkeep's dependencies and the pipeline's own."""

    @property
    def plugins(self) -> Plugins: ...
    @property
    def rules(self) -> RuleSetRef: ...
    @property
    def categories(self) -> Categories: ...
    @property
    def limiter(self) -> Limiter: ...
    @property
    def breaker(self) -> Breaker: ...
    @property
    def rng(self) -> random.Random: ...


class WorkerService:
    """Runs the actors for one process: start(), then stop() on shutdown."""

    def __init__(
        self,
        runtime: WorkerDeps,
        *,
        threads: int | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sweep_interval_s: float | None = None,
    ) -> None:
        self.rt = runtime
        self.threads = threads or runtime.settings.worker.threads
        self._transport = transport
        self._loop = LoopThread()
        self.writer = StoreWriter(runtime.store)
        self._http: httpx.AsyncClient | None = None
        self.connectors: Mapping[str, Connector] = {}
        self.engine: DeliveryEngine | None = None
        self._consumers: dict[str, BatchConsumer] = {}
        self._consumers_lock = threading.Lock()
        self._delays: DelayQueueWorker | None = None
        self._stopping = threading.Event()
        lease = runtime.settings.worker.lease_seconds
        self._sweep_interval_s = sweep_interval_s or max(1.0, lease / 4)
        self._sweeper = threading.Thread(
            target=self._sweep_forever, name="switchboard-sweeper", daemon=True
        )

    def start(self) -> None:
        self._loop.start()
        self._http, self.connectors = self._loop.run(self._open_connectors())
        rt = self.rt
        self.engine = DeliveryEngine(
            store=rt.store,
            settings=rt.settings,
            connectors=self.connectors,
            clock=rt.clock,
            rng=rt.rng,
            limiter=rt.limiter,
            # The shared (Redis) breaker is asked once a second per destination while it
            # is closed, not twice per send; the in-process one costs nothing to ask.
            breaker=rt.breaker
            if isinstance(rt.breaker, MemoryBreaker)
            else CachedBreaker(rt.breaker, rt.clock.monotonic),
            secrets=rt.settings.secret_values(),
            rerender=Rerenderer(
                store=rt.store, rules=rt.rules, sources=rt.sources, context=self._source_context
            ),
            writer=self.writer,
        )
        queue = self.rt.queue
        self._start_consumer(
            queue.events_queue,
            Handlers(
                batched={PROCESS_ACTOR: self._process_batch},
                single={FLUSH_ACTOR: self._flush},
            ),
            PROCESS_BATCHES_IN_FLIGHT,
        )
        queue.on_first_use(self._consume)
        for name in sorted(self._connectors_in_use()):
            queue.use(name)
        # Delayed messages (come-backs, group flushes) wait in `<queue>.DQ` until due;
        # Dramatiq's worker moves them to their queue (its threads run no actors).
        self._delays = DelayQueueWorker(queue.broker, worker_threads=1, worker_timeout=100)
        self._delays.start()
        self._sweeper.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._delays is not None:
            self._delays.stop(timeout=10_000)
        with self._consumers_lock:
            consumers = list(self._consumers.values())
        for consumer in consumers:
            consumer.stop()
        if self._http is not None:
            self._loop.run(self._http.aclose())
        self._loop.stop()
        self._sweeper.join(timeout=5)
        self.writer.close()

    async def _open_connectors(self) -> tuple[httpx.AsyncClient, dict[str, Connector]]:
        http = make_client(
            timeout_s=self.rt.settings.worker.http_timeout_seconds, transport=self._transport
        )
        env = ConnectorEnv(http=http, base_dir=self.rt.settings.base_dir)
        return http, {name: cls(env) for name, cls in self.rt.plugins.connectors.items()}

    def _connectors_in_use(self) -> set[str]:
        """Connectors this hub can send with now: its destinations', its rules' and those
        of deliveries not finished yet (a replay, or rules changed since they were made)."""
        rt = self.rt
        named = {d.connector for d in rt.settings.destinations.values()}
        named |= {a.connector for rule in rt.rules.current.rules for a in rule.actions}
        return named | rt.store.open_delivery_connectors()

    def _consume(self, connector: str) -> None:
        """Start consuming `connector`'s delivery queue.

        Called by the Queue when this process first enqueues a delivery for it: when
        rules reloaded with a new connector, or the sweeper found a delivery made by a
        replay elsewhere. A consumer polls the broker even when idle, so unused connectors
        get none (an idle worker used 9.6% of a core with all ten, 2.6% with two).
        """

        async def deliver(delivery_ids: list[str]) -> None:
            await self._deliver_batch(connector, delivery_ids)

        self._start_consumer(
            self.rt.queue.delivery_queue(connector),
            Handlers(batched={delivery_actor(connector): deliver}, single={}),
            self.threads,
        )

    def _start_consumer(self, queue_name: str, handlers: Handlers, in_flight: int) -> None:
        assert self._loop.loop is not None  # noqa: S101 - consumers start after the loop
        with self._consumers_lock:
            if queue_name in self._consumers or self._stopping.is_set():
                return
            consumer = BatchConsumer(
                self.rt.queue.broker,
                queue_name,
                handlers,
                self._loop.loop,
                max_in_flight=in_flight,
            )
            self._consumers[queue_name] = consumer
        consumer.start()

    # --- stages -------------------------------------------------------------------

    async def _process_batch(self, event_ids: list[str]) -> None:
        # Normalizing and rendering are CPU work and enrichment waits on the loop: the
        # stage runs in a thread of its own, and writes through the writer's thread.
        await asyncio.to_thread(self._process_sync, event_ids)

    def _process_sync(self, event_ids: list[str]) -> None:
        rt = self.rt
        outcome = process_events(
            event_ids,
            store=rt.store,
            sources=rt.sources,
            ruleset=rt.rules.current,
            destinations=rt.settings.destinations,
            clock=rt.clock,
            lease_s=rt.settings.worker.lease_seconds,
            enrich=self._enrich,
            queries=self._queries,
            write=self.writer.call,
            categories=rt.categories,
        )
        self._enqueue(outcome.pending, outcome.groups)

    def _flush(self, group_id: str) -> None:
        rt = self.rt
        outcome = flush_group(
            group_id,
            store=rt.store,
            ruleset=rt.rules.current,
            destinations=rt.settings.destinations,
            clock=rt.clock,
            lease_s=rt.settings.worker.lease_seconds,
            sources=rt.sources,
            enrich=self._enrich,
            queries=self._queries,
            categories=rt.categories,
        )
        if outcome is None:
            return
        self._enqueue(outcome.pending, outcome.groups)
        if outcome.retry_in_s is not None:
            rt.queue.enqueue_group_flush(group_id, delay_s=outcome.retry_in_s)

    def _enqueue(self, pending: list[tuple[str, str]], groups: list[tuple[str, float]]) -> None:
        """Messages for what processing planned: deliveries now, group flushes when due."""
        queue = self.rt.queue
        queue.enqueue_deliveries(pending)
        now = self.rt.clock.now().timestamp()
        for group_id, flush_at in groups:
            queue.enqueue_group_flush(group_id, delay_s=max(0.0, flush_at - now))

    # --- enrichment (sources that fetch what their webhooks only point at) -----------

    def _enrich(self, source: EnrichingSource, events: list[Event]) -> list[Event]:
        return self._loop.run(source.enrich(events, self._source_context()))

    def _queries(self, rule: Rule, document: Mapping[str, Any]) -> dict[str, Any]:
        """A matched rule's `query:` steps, on the worker's event loop."""
        rt = self.rt
        return self._loop.run(
            run_queries(
                rule, document, store=rt.store, sources=rt.sources, ctx=self._source_context()
            )
        )

    def _source_context(self) -> EnrichContext:
        assert self._http is not None  # noqa: S101 - actors run only after start()
        return EnrichContext(
            clock=self.rt.clock,
            http=self._http,
            snapshots=StoreSnapshots(self.rt.store),
            throttle=self._throttle,
        )

    async def _throttle(self, key: str, limits: Sequence[tuple[int, float]]) -> None:
        """Wait for a slot in a shared budget (every worker process draws on the same one)."""
        wanted = [Limit(count, per + JITTER_ALLOWANCE_S) for count, per in limits]
        while (wait := await asyncio.to_thread(self.rt.limiter.acquire, key, wanted)) > 0:
            await self.rt.clock.sleep(wait)

    async def _deliver_batch(self, connector: str, delivery_ids: list[str]) -> None:
        """Send a batch, then put what it asks for on the queue: come-backs and wake-ups."""
        assert self.engine is not None  # noqa: S101 - actors run only after start()
        batch = await self.engine.deliver_batch(delivery_ids)
        queue = self.rt.queue
        later: dict[float, list[str]] = {}
        for delivery_id, _, come_back_in_s in batch.come_backs():
            # Wake early; the engine waits out the last fraction exactly. Rounded down to
            # 10 ms so that rows coming back together share one message.
            early = math.floor(max(0.0, come_back_in_s - WAKE_EARLY_S) * 100) / 100
            later.setdefault(early, []).append(delivery_id)
        # Enqueueing is one short Redis round trip: cheaper on the loop than a thread hop.
        for delay_s, ids in sorted(later.items()):
            queue.enqueue_deliveries_later(ids, connector, delay_s=delay_s)
        if batch.wake:
            queue.enqueue_deliveries(batch.wake)
        for outcome in batch.outcomes:
            decision = outcome.decision
            if decision is not None and decision.action == "retry":
                log.info(
                    "delivery %s: retry in %.3fs: %s",
                    outcome.delivery_id,
                    decision.delay_s,
                    decision.reason,
                )
            elif decision is not None and decision.action == "dead":
                log.warning("delivery %s is dead: %s", outcome.delivery_id, decision.reason)

    # --- sweeper ------------------------------------------------------------------

    def sweep_once(self) -> int:
        """Re-enqueue rows whose message was lost or whose lease ran out; returns the count."""
        rt = self.rt
        now = rt.clock.now().timestamp()
        older_than = now - rt.settings.worker.lease_seconds
        event_ids = rt.store.stale_event_ids(now=now, older_than=older_than)
        rt.queue.enqueue_events(event_ids)
        stale = rt.store.stale_deliveries(now=now, older_than=older_than)
        rt.queue.enqueue_deliveries(stale)
        # A group whose flush message was lost is flushed once it is a lease overdue.
        overdue = windows.due_groups(rt.store, now=older_than)
        for group_id in overdue:
            rt.queue.enqueue_group_flush(group_id, delay_s=0)
        return len(event_ids) + len(stale) + len(overdue)

    def _sweep_forever(self) -> None:
        while not self._stopping.wait(self._sweep_interval_s):
            try:
                swept = self.sweep_once()
            except Exception:  # keep sweeping; the next tick may find the store back
                log.exception("sweep failed")
                continue
            if swept:
                log.info("sweeper re-enqueued %d stale rows", swept)
