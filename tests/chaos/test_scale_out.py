"""Scale-out: 2 ingress, 3 workers and a scheduler as real processes on PostgreSQL + Redis.

5,000 signed GitHub webhooks go to both ingress ports at once, one worker is killed with
SIGKILL in the middle, and an every-minute `schedule:` rule keeps ticking meanwhile. The
destination is a Standard Webhooks receiver (the `webhook` connector), which keeps every
arrival with its `webhook-id`, the delivery's idempotency key, so a resend is visible.
The measured throughput is printed; docs/operations.md quotes it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.clock import SystemClock
from hub.events import format_time
from hub.pipeline.queue import MAX_BATCH
from hub.store import Store, open_store, schedules
from tests.chaos.harness import HubProcesses, issue_payload
from tests.postgres import postgres_database  # noqa: F401  (the postgres_url fixture)
from tests.servers import serve_in_thread
from tests.support import (
    REDIS_URL_FOR_TESTS,
    config_with_rules,
    free_port,
    github_headers,
    wait_healthy,
    wait_until,
)

pytestmark = [pytest.mark.chaos, pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

#: The issue's size, ~110 s here (figures in docs/operations.md §10); a smaller count
#: (`SWITCHBOARD_SCALE_OUT_EVENTS=1500`) for a quicker run.
EVENTS = int(os.environ.get("SWITCHBOARD_SCALE_OUT_EVENTS", "5000"))
ENTITIES = max(1, min(500, EVENTS // 10))  # issues; each one's deliveries go in event order
IN_FLIGHT = 32  # concurrent webhook requests, split over both ingress ports
WORKER_THREADS = 4
#: Shorter than the default 60 s, so the killed worker's claims come back well within the
#: run; not much shorter, or events merely waiting in the backlog are swept again and again.
LEASE_S = 30
#: From the first request to the last delivery. Measured on a shared 2-core machine:
#: ~290 s (docs/operations.md, "Capacity measured in the multi-process test"); bounded
#: with room for a busier machine, so a stuck run fails instead of hanging.
DELIVERY_TIMEOUT_S = 480
KILL_AFTER_DELIVERED = EVENTS * 3 // 10
TICK_RULE = "every-minute"

RULES = f"""
rules:
  - id: issue-event
    on: github.issues.*
    actions:
      - webhook:
          to: sink
          body: {{kind: issue, event: "{{{{ event.id }}}}"}}
  - id: {TICK_RULE}
    schedule: "* * * * *"
    actions:
      - webhook:
          to: sink
          body: {{kind: tick, tick: "{{{{ event.data.fields.tick }}}}"}}
"""


@dataclass
class Receiver:
    """A fast Standard Webhooks receiver: every arrival's webhook-id and body kept."""

    arrivals: list[tuple[str, str, str]] = field(default_factory=list)  # (id, kind, value)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = json.loads(await request.body())
            value = str(body.get("event") or body.get("tick"))
            with self._lock:
                self.arrivals.append((request.headers["webhook-id"], body["kind"], value))
            return JSONResponse({"ok": True})

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])

    def of(self, kind: str) -> list[tuple[str, str]]:
        """(webhook-id, value) of every arrival of `kind`, resends included."""
        with self._lock:
            return [(key, value) for key, k, value in self.arrivals if k == kind]

    def count(self) -> int:
        with self._lock:
            return len(self.arrivals)


@dataclass
class Cluster(HubProcesses):
    """HubProcesses plus a second ingress, a scheduler, and the CPU time each one used."""

    #: CPU seconds of processes that are gone (read just before they were stopped).
    cpu_spent: dict[str, float] = field(default_factory=dict)

    def cpu_seconds(self) -> dict[str, float]:
        """User + system CPU seconds per process so far (Linux /proc; 0 elsewhere)."""
        out = dict(self.cpu_spent)
        for name, proc in self.procs.items():
            out[name] = _cpu_seconds(proc.pid)
        return out

    def kill(self, name: str) -> None:
        self.cpu_spent[name] = _cpu_seconds(self.procs[name].pid)
        super().kill(name)

    def start_second_ingress(self, port: int) -> None:
        self._spawn("serve-2", ["serve", "--no-worker", "--port", str(port)])
        wait_healthy(f"http://127.0.0.1:{port}", "the second ingress process")

    def start_scheduler(self) -> None:
        self._spawn("scheduler", ["scheduler"])

    def stop_process(self, name: str) -> None:
        """SIGTERM one process and wait for it to exit."""
        self.cpu_spent[name] = _cpu_seconds(self.procs[name].pid)
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc/<pid>/stat (fields 14 and 15)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    fake = Receiver()
    with serve_in_thread(fake.app()) as base:
        yield fake, f"{base}/hook"


def _config(tmp_path: Path, *, store_url: str, namespace: str, hook_url: str) -> Path:
    return config_with_rules(
        tmp_path,
        RULES,
        f"""
store: {{url: "{store_url}"}}
broker: {{url: "{REDIS_URL_FOR_TESTS}", namespace: "{namespace}"}}
worker: {{threads: {WORKER_THREADS}, lease_seconds: {LEASE_S}, http_timeout_seconds: 5}}
sources:
  github: {{secret: {{env: SWITCHBOARD_SECRET_GITHUB}}}}
destinations:
  sink:
    connector: webhook
    url: "{hook_url}"
    allow_private_network: true
    concurrency: 16
""",
        name="scale.yaml",
    )


def _requests(run: str) -> list[tuple[bytes, dict[str, str]]]:
    """The real `issues.opened` payload, one per event, spread over ENTITIES issues."""
    out = []
    for n in range(EVENTS):
        body = issue_payload(n % ENTITIES + 1, n)
        out.append((body, github_headers(body, event="issues", delivery=f"{run}-{n}")))
    return out


async def _post_all(ports: list[int], requests: list[tuple[bytes, dict[str, str]]]) -> list[str]:
    """POST every request, round robin over the ports, IN_FLIGHT at a time; the ids."""
    clients = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) for port in ports]
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def post(client: httpx.AsyncClient, body: bytes, headers: dict[str, str]) -> str:
        for attempt in range(5):
            try:
                async with slots:
                    response = await client.post("/hooks/github", content=body, headers=headers)
                break
            except httpx.TransportError:
                # A keep-alive connection the server closed as it was reused; GitHub resends
                # too, and a resend of a stored delivery is answered 200 "duplicate".
                if attempt == 4:
                    raise
        assert response.status_code in (200, 202), response.text
        return str(response.json()["id"])

    try:
        return await asyncio.gather(
            *(
                post(client, body, headers)
                for client, (body, headers) in zip(itertools.cycle(clients), requests)
            )
        )
    finally:
        for client in clients:
            await client.aclose()


def _minute_marks(after: float, until: float) -> set[float]:
    """Every whole minute (epoch seconds) in (after, until]."""
    first = (int(after) // 60 + 1) * 60
    return {float(m) for m in range(first, int(until) + 1, 60)}


def test_two_ingress_three_workers_and_a_scheduler_deliver_everything_once(
    tmp_path: Path,
    postgres_url: str,
    redis_namespace: str,
    receiver: tuple[Receiver, str],
) -> None:
    fake, hook_url = receiver
    config = _config(tmp_path, store_url=postgres_url, namespace=redis_namespace, hook_url=hook_url)
    hub = Cluster(config=config, logs=tmp_path, webhook_url="")
    second_port = free_port()
    requests = _requests(redis_namespace)
    clock = SystemClock()
    store = open_store(postgres_url)  # the test's own view of the shared store
    killed = threading.Event()

    def kill_one_worker_mid_run() -> None:
        try:
            wait_until(lambda: fake.count() >= KILL_AFTER_DELIVERED, 300, "deliveries under way")
        except AssertionError:
            return
        hub.kill("w2")  # SIGKILL: its claims and prefetched messages are simply gone
        killed.set()

    try:
        hub.start_ingress()
        hub.start_second_ingress(second_port)
        for name in ("w1", "w2", "w3"):
            hub.start_worker(name, threads=WORKER_THREADS)
        hub.start_scheduler()
        wait_until(
            lambda: bool(schedules.list_ticks(store, rule_id=TICK_RULE)),
            60,  # a busy machine takes a while to start six Python processes
            "the scheduler has recorded the every-minute schedule",
        )
        # The moment the scheduler first saw the schedule: ticks fire after it.
        baseline = next(
            t for t in schedules.list_ticks(store, rule_id=TICK_RULE) if t.status == "baseline"
        )
        killer = threading.Thread(target=kill_one_worker_mid_run, daemon=True)
        killer.start()

        started = time.monotonic()
        accepted = asyncio.run(_post_all([hub.port, second_port], requests))
        accepted_s = time.monotonic() - started
        wanted = set(accepted)

        def all_delivered() -> bool:
            return {v for _, v in fake.of("issue")} >= wanted

        remaining_s = DELIVERY_TIMEOUT_S - (time.monotonic() - started)
        wait_until(all_delivered, remaining_s, f"all {EVENTS} events delivered")
        delivered_s = time.monotonic() - started
        # At least one tick must fall inside the run; a fast run waits for the next minute.
        wait_until(lambda: bool(_fired(store)), 65, "the every-minute schedule fired")
        hub.stop_process("scheduler")  # no tick after this, so the count can be checked
        ended = clock.now().timestamp()
        fired = _fired(store)
        wait_until(
            lambda: {v for _, v in fake.of("tick")} >= {_iso(t.tick_at) for t in fired},
            30,
            "every fired tick delivered",
        )
        killer.join(timeout=1)
        cpu = hub.cpu_seconds()
    finally:
        hub.stop()
        store.close()

    issues = fake.of("issue")
    ticks = fake.of("tick")
    resent = sum(n - 1 for n in Counter(issues + ticks).values())
    print(
        f"\nscale-out: {EVENTS} webhooks over 2 ingress, 3 workers (1 killed), 1 scheduler\n"
        f"  accepted  {accepted_s:6.1f} s  {EVENTS / accepted_s:7.1f} events/s\n"
        f"  delivered {delivered_s:6.1f} s  {EVENTS / delivered_s:7.1f} events/s "
        f"(first request to last delivery)\n"
        f"  arrivals {len(issues) + len(ticks)}, resent after the kill {resent}, "
        f"ticks fired {len(fired)}\n"
        f"  CPU per event: ingress {_ms_per(cpu, 'serve', EVENTS):.1f} ms, "
        f"workers {_ms_per(cpu, 'w', EVENTS):.1f} ms, "
        f"scheduler {cpu.get('scheduler', 0.0):.1f} s in all"
    )
    assert killed.is_set(), "the worker was never killed: deliveries never got under way"
    # Every accepted event arrived; nothing arrived that was not sent.
    assert {v for _, v in issues} == wanted
    # One idempotency key per event (and per tick): a resend repeats the key, so the
    # receiver, deduplicating by webhook-id as Standard Webhooks asks, acts on each once.
    pairs = set(issues)
    assert len(pairs) == len({key for key, _ in pairs}) == EVENTS
    # Resends only come from the killed worker: at most the rows of the delivery batches it
    # held (`worker.threads` batches of at most MAX_BATCH rows, sent or sent and not yet
    # recorded), each with its idempotency key repeated (checked above).
    assert resent <= WORKER_THREADS * MAX_BATCH, Counter(issues + ticks).most_common(5)
    # Each minute mark since the schedule was first seen fired once, and was delivered.
    fired_at = [t.tick_at for t in fired]
    assert len(fired_at) == len(set(fired_at))
    # (the scheduler looks every second, later on a busy machine: the last few seconds may
    # not have fired when it was stopped)
    assert _minute_marks(baseline.tick_at, ended - 5) <= set(fired_at)
    assert set(fired_at) <= _minute_marks(baseline.tick_at, ended)
    assert {v for _, v in ticks} == {_iso(t) for t in fired_at}
    _assert_store_agrees(postgres_url, wanted, len(fired_at))


def _ms_per(cpu: dict[str, float], prefix: str, events: int) -> float:
    """CPU milliseconds per event of the processes whose names start with `prefix`."""
    return 1000 * sum(v for k, v in cpu.items() if k.startswith(prefix)) / events


def _fired(store: Store) -> list[schedules.TickRow]:
    """The every-minute rule's fired ticks, oldest first."""
    return [t for t in schedules.list_ticks(store, rule_id=TICK_RULE) if t.status == "fired"]


def _iso(tick_at: float) -> str:
    """A tick as the event carries it (`event.data.fields.tick`)."""
    return format_time(datetime.fromtimestamp(tick_at, tz=UTC))


def _assert_store_agrees(url: str, accepted: set[str], ticks: int) -> None:
    """The store says the same: every event processed, every delivery delivered once."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            events = dict(
                conn.execute(text("SELECT status, count(*) FROM events GROUP BY status")).all()
            )
            deliveries = dict(
                conn.execute(text("SELECT status, count(*) FROM deliveries GROUP BY status")).all()
            )
            github = set(conn.scalars(text("SELECT id FROM events WHERE source = 'github'")).all())
    finally:
        engine.dispose()
    assert github == accepted
    assert events == {"processed": len(accepted) + ticks}
    assert deliveries == {"delivered": len(accepted) + ticks}
