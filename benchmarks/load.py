"""Load and soak: a sustained open-loop webhook load on the production shape, in one run.

What it answers (issue #11): at a target rate (default 1,000 events/s for 60 s), how many
events/s does the hub accept compared with a bare Starlette app on the same machine, how
fast are they acknowledged, how long until they reach the destination, does any process
grow in memory, and does every accepted event end somewhere (nothing lost)?

Everything runs as real processes on 127.0.0.1, in this order:
  1. bare ceiling  `ingest.py --serve-bare` (a Starlette app that reads the body and
                   answers 202) under the hub's uvicorn settings, closed loop with wrk
                   (else the Python generator), --bare-rounds rounds, best kept: the same
                   measurement as benchmarks/ingest.py. Stopped before the hub starts.
  2. the hub       `serve --no-worker` + 2 `worker` processes (4 threads each) on Redis
                   and one SQLite store, rules sending each `issues.opened` to the fake
                   Discord (benchmarks/fake_discord.py, unlimited: a fast destination)
                   (the stack of benchmarks/delivery.py).
  3. the load      benchmarks/openloop.py in its own process: request i due at i/rate
                   whatever the answers, over at most 256 keep-alive connections; a due
                   request with no free connection for --queue-timeout s is dropped
                   unsent, a sent one is given up after --timeout s (GitHub's 10 s); one
                   distinct issue per request. The first --warmup seconds are the warm-up.
  4. drain         after the load, the store is polled until every event and delivery
                   is in a final state, or until the run's time cap (--max-total).
While it runs, a sampler reads every process's VmRSS (/proc/<pid>/status) and CPU time
each second and the store's row counts by status every few seconds; py-spy (when
installed) samples ingress (GIL holder, and wall clock of every thread for the writer's
waits) and the first worker (GIL holder) for the length of the load.

Figures: accepted rate (202s per second between the warm-up and the end of the schedule)
and its ratio to the bare ceiling; ack latency (scheduled send -> 202) p50/p99; end to end
(202 at the generator -> arrival at the fake, both CLOCK_MONOTONIC) p50/p99, lower bounds
(">=") when some never arrived; RSS at start, after warm-up, at the end of the load and at
the end, with the growth after warm-up checked against --rss-bound-mb; accounting: every
event the hub stored (acknowledged or not) is delivered, dead (failed event or dead
delivery), filtered (processed, no rule matched) or still in the backlog. The hub is
expected to fall behind at 1,000/s on 2 cores: the backlog and the drain time are
reported, never hidden.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from delivery import LIMITED_BELOW, Fake, Stack
from harness import (
    BENCH_DIR,
    DEFAULT_REDIS_URL,
    DELIVERY_ID_COLUMNS,
    PYTHON,
    Proc,
    cpu_seconds,
    free_port,
    hub_env,
    pause,
    percentile,
    redis_available,
    spawn,
    stop_all,
    use_tree,
    wait_http,
)
from ingest import Throughput, run_python_closed, run_wrk
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

#: Final states: an event row, and a delivery row.
EVENT_OPEN = ("received", "processing")
DELIVERY_OPEN = ("pending", "sending")
#: How openloop.py says it gave up on a request.
GIVE_UPS = ("not-sent", "timeout-after-send")
#: Seconds kept in hand at the time cap to stop processes and print the report.
TEARDOWN_MARGIN_S = 20.0
MB = 1024 * 1024


# --- process sampling ---------------------------------------------------------------------


def rss_bytes(pid: int, key: str = "VmRSS") -> int:
    """Resident set size (or VmHWM, its peak) of a live process, 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


@dataclass
class Sample:
    at: float
    rss: dict[str, int]
    cpu: dict[str, float]
    #: ({event status: n}, {delivery status: n}) when the store was read this time
    store: tuple[dict[str, int], dict[str, int]] | None = None


def read_rows(store_url: str, sql: str) -> list[Any]:
    """Rows of one query on the hub's store (SQLite file or PostgreSQL), own connection."""
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


#: Where a delivered row's time went, from the store's own timestamps: the event's
#: arrival, the end of its processing, the start of the delivery batch that sent it (its
#: successful attempt's start: before the claim), and the attempt's record.
STAGES_SQL = """
SELECT e.received_at, e.processed_at, a.started_at, d.updated_at
FROM deliveries d JOIN events e ON e.id = d.event_id
JOIN attempts a ON a.delivery_id = d.id AND a.number = d.attempts
WHERE d.status = 'delivered'
"""
STAGE_NAMES = ("received -> processed", "processed -> batch started", "batch started -> recorded")


def read_stages(store_url: str) -> dict[str, list[float]]:
    """Seconds per delivered row in each of STAGE_NAMES; empty for a schema without them."""
    try:
        rows = read_rows(store_url, STAGES_SQL)
    except DBAPIError:
        return {}
    stages: dict[str, list[float]] = {name: [] for name in STAGE_NAMES}
    for received, processed, started, recorded in rows:
        if processed is None:
            continue
        for name, (a, b) in zip(
            STAGE_NAMES,
            ((received, processed), (processed, started), (started, recorded)),
            strict=True,
        ):
            stages[name].append(b - a)
    return stages


def stage_percentiles(seconds: list[float]) -> str:
    ms = [v * 1000 for v in seconds]
    return " / ".join(fmt_ms(percentile(ms, q)) for q in (50, 90, 99))


def read_event_rows(store_url: str) -> list[Any]:
    """(id, the provider's delivery id, status) of every event, in either schema."""
    for column in DELIVERY_ID_COLUMNS:
        try:
            sql = f"SELECT id, {column}, status FROM events"  # noqa: S608 - a constant name
            return read_rows(store_url, sql)
        except DBAPIError:
            if column == DELIVERY_ID_COLUMNS[-1]:
                raise
    raise AssertionError("unreachable")


def store_counts(store_url: str) -> tuple[dict[str, int], dict[str, int]]:
    """Event and delivery rows by status."""
    events = read_rows(store_url, "SELECT status, count(*) FROM events GROUP BY status")
    deliveries = read_rows(store_url, "SELECT status, count(*) FROM deliveries GROUP BY status")
    return {s: int(n) for s, n in events}, {s: int(n) for s, n in deliveries}


class Sampler(threading.Thread):
    """Reads RSS and CPU of every process each second, store counts every `store_every`."""

    def __init__(self, procs: dict[str, int], db: str, store_every: int = 5) -> None:
        super().__init__(daemon=True, name="sampler")
        self.procs = procs
        self.db = db
        self.store_every = store_every
        self.samples: list[Sample] = []
        self._halt = threading.Event()

    def take(self, with_store: bool = False) -> Sample:
        sample = Sample(
            at=time.monotonic(),
            rss={name: rss_bytes(pid) for name, pid in self.procs.items()},
            cpu={name: cpu_seconds(pid) for name, pid in self.procs.items()},
        )
        if with_store:
            try:
                sample.store = store_counts(self.db)
            except SQLAlchemyError:
                sample.store = None
        return sample

    def run(self) -> None:
        tick = 0
        while not self._halt.is_set():
            self.samples.append(self.take(with_store=tick % self.store_every == 0))
            tick += 1
            self._halt.wait(1.0)

    def stop(self) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout=10)

    def nearest(self, at: float) -> Sample:
        return min(self.samples, key=lambda s: abs(s.at - at))


# --- bare ceiling -------------------------------------------------------------------------


def bare_ceiling(args: argparse.Namespace, tmp: Path) -> tuple[Throughput, list[float], bool]:
    """The bare Starlette app's closed-loop req/s, best of rounds (as ingest.py measures)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/github"
    proc = spawn(
        "bare",
        [PYTHON, str(BENCH_DIR / "ingest.py"), "--serve-bare", str(port)],
        env=hub_env(),
        log=tmp / "bare.log",
    )
    use_wrk = not args.no_wrk and shutil.which("wrk") is not None
    rounds: list[Throughput] = []
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", args.start_timeout, [proc])
        for n in range(args.bare_rounds):
            prefix = f"bare{n}"
            started, cpu0 = time.monotonic(), cpu_seconds(proc.pid)
            if use_wrk:
                tput = run_wrk(
                    url, connections=64, duration=args.bare_seconds, prefix=prefix, tmp=tmp
                )
            else:
                tput, _ = run_python_closed(
                    url, connections=64, duration=args.bare_seconds, prefix=prefix, tmp=tmp
                )
            tput.cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - started)
            rounds.append(tput)
    finally:
        proc.kill()
    return max(rounds, key=lambda t: t.rps), [r.rps for r in rounds], use_wrk


# --- profiling ----------------------------------------------------------------------------


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    return found if Path(found).is_file() else None


#: py-spy's sampling rate (Hz): samples / RATE = seconds.
PROFILE_RATE = 100
#: The ingress writer's two steps (run one after the other, on executor threads).
WRITER_STEPS = ("Store.insert_events", "Queue.enqueue_events")


def start_profile(
    name: str, pid: int, seconds: float, tmp: Path, *, mode: str
) -> tuple[Proc, Path] | None:
    """py-spy record as collapsed stacks; non-blocking, so the target is never paused.

    mode `gil`: only the thread holding the GIL, i.e. where the process's Python CPU goes
    (what limits a GIL-bound process). Mode `wall`: every thread, idle ones included
    (`--idle`), i.e. wall-clock time, so the ingress writer's steps show with their waits
    (SQLite lock and commit, Redis round trips) even though they hold no GIL then.
    """
    exe = py_spy()
    if exe is None:
        return None
    label = f"{name}-{mode}"
    out = tmp / f"profile-{label}.txt"
    args = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    args += ["--rate", str(PROFILE_RATE), "--format", "raw", "--nonblocking", "-o", str(out)]
    args.append("--gil" if mode == "gil" else "--idle")
    log = tmp / f"py-spy-{label}.log"
    return spawn(f"py-spy-{label}", args, env=dict(os.environ), log=log), out


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's collapsed stacks as (shortened frames root first, sample count)."""
    if not path.is_file():
        return []
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [_frame_name(f) for f in stack.split(";") if f]
        if frames and count_text.isdigit():
            stacks.append((frames, int(count_text)))
    return stacks


def writer_lines(path: Path, seconds: float) -> list[str]:
    """Wall time of the ingress writer's steps and what it went to (leaf frames)."""
    stacks = read_stacks(path)
    if not stacks:
        return ["  (no wall-clock samples)"]
    lines = []
    for step in WRITER_STEPS:
        inside = [(f, n) for f, n in stacks if any(x.startswith(step + " ") for x in f)]
        total = sum(n for _, n in inside) / PROFILE_RATE
        leaves: Counter[str] = Counter()
        for frames, n in inside:
            leaves[frames[-1]] += n
        top = "; ".join(f"{leaf} {n / PROFILE_RATE:.1f} s" for leaf, n in leaves.most_common(4))
        lines.append(
            f"  {step}: {total:.1f} s of the {seconds:.0f} s load "
            f"({total / max(seconds, 1e-9):.0%}); in: {top or '-'}"
        )
    return lines


def _frame_name(frame: str) -> str:
    """`func (uvicorn/protocols/http/h11_impl.py:123)` -> `func (uvicorn/.../h11_impl.py)`.

    py-spy already prints paths relative to their sys.path entry; absolute ones (scripts)
    are cut to what follows site-packages, or to their last two parts. Line numbers are
    dropped so that every line of a function counts together.
    """
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(path).parts
    if not path.startswith("/"):
        short = path
    elif "site-packages" in parts:
        short = "/".join(parts[parts.index("site-packages") + 1 :])
    elif "hub" in parts or "connectors" in parts:
        anchor = parts.index("hub") if "hub" in parts else parts.index("connectors")
        short = "/".join(parts[anchor:])
    else:
        short = "/".join(parts[-2:])
    return f"{name} ({short})"


def _package(frame: str) -> str:
    """The package a (shortened) frame belongs to, for a self-time breakdown."""
    where = frame.rsplit(" (", 1)[-1].rstrip(")")
    top = where.split("/", 1)[0]
    if top in ("hub", "connectors"):
        return "/".join(where.split("/")[:2]).removesuffix(".py")
    if top.endswith(".py") or "/" not in where:
        return "stdlib " + where.split("/")[-1].removesuffix(".py")
    return top


@dataclass
class Profile:
    samples: int
    #: hub/connectors frames, each counted once per sample it is on the stack
    inclusive: list[tuple[str, float]]
    #: leaf frames (the Python function running, or calling into C)
    own: list[tuple[str, float]]
    #: each sample charged to the deepest hub/connectors frame on its stack, else to the
    #: package of its leaf ("outside hub: h11"): which hub step costs what, all in
    attributed: list[tuple[str, float]]


def read_profile(path: Path, top: int = 12) -> Profile | None:
    """Top frames of py-spy's collapsed stacks: inclusive, self, and charged to hub steps."""
    stacks = read_stacks(path)
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    attributed: Counter[str] = Counter()
    total = 0
    for frames, count in stacks:
        total += count
        ours = [f for f in frames if _is_ours(f)]
        for frame in set(ours):
            inclusive[frame] += count
        own[frames[-1]] += count
        attributed[ours[-1] if ours else f"outside hub: {_package(frames[-1])}"] += count
    if not total:
        return None

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, v / total) for k, v in counter.most_common(top)]

    return Profile(total, share(inclusive), share(own), share(attributed))


def _is_ours(frame: str) -> bool:
    where = frame.rsplit(" (", 1)[-1]
    # hub/cli.py and hub/__main__.py only start uvicorn or Dramatiq: every sample is under them.
    return where.startswith(("hub/", "connectors/")) and not where.startswith(
        ("hub/__main__", "hub/cli")
    )


# --- the run ------------------------------------------------------------------------------


@dataclass
class Run:
    """Everything measured, for the report and the --json file."""

    args: dict[str, Any]
    load_before: float = 0.0
    load_after: float = 0.0
    bare: Throughput | None = None
    bare_rounds: list[float] = field(default_factory=list)
    bare_tool: str = ""
    gen: dict[str, Any] = field(default_factory=dict)
    t_load: float = 0.0
    t_load_end: float = 0.0
    t_end: float = 0.0
    drained: bool = False
    samples: list[Sample] = field(default_factory=list)
    points: dict[str, Sample] = field(default_factory=dict)
    arrivals: dict[str, list[float]] = field(default_factory=dict)
    events: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (delivery, status)
    deliveries: dict[str, list[str]] = field(default_factory=dict)  # event id -> statuses
    #: stage name -> seconds per delivered row (`read_stages`)
    stages: dict[str, list[float]] = field(default_factory=dict)
    profiles: dict[str, Profile | None] = field(default_factory=dict)
    #: the ingress writer's wall time per step (py-spy --idle)
    writer: list[str] = field(default_factory=list)
    procs: dict[str, int] = field(default_factory=dict)
    peaks: dict[str, int] = field(default_factory=dict)
    started: float = 0.0


def run_load(args: argparse.Namespace, tmp: Path, run: Run) -> None:
    """Start the stack, drive the load, wait for the drain, read back every row."""
    # A patient fake: start-up may be slow on a busy machine, and reading back a whole
    # run's arrival records takes longer than delivery.py's short runs.
    fake = Fake(tmp, start_timeout_s=args.start_timeout, client_timeout_s=60)
    stack: Stack | None = None
    sampler: Sampler | None = None
    helpers: list[Proc] = []  # the generator and py-spy: stopped whatever happens
    try:
        stack = Stack.start(
            tmp,
            "load",
            fake,
            workers=args.workers,
            threads=args.threads,
            lease_s=60,
            redis_url=args.redis_url,
            store=args.store,
        )
        # Start-up can take long on a busy machine (imports, byte-compiling edited files):
        # wait with our own bound first, so Stack.ready()'s 30 s do not fail the run.
        assert stack.serve is not None
        wait_http(f"{stack.base}/healthz", args.start_timeout, [stack.serve, *stack.workers])
        for worker in stack.workers:
            stack.wait_worker(worker, timeout_s=args.start_timeout)
        stack.ready()
        for worker in stack.workers:
            # Lower the workers' CPU priority (like `nice -n N switchboard worker`): on a
            # shared box the kernel then runs ingress first when it has a request.
            os.setpriority(os.PRIO_PROCESS, worker.pid, args.nice_workers)
        fake.reset()  # unlimited: a fast destination
        assert stack.serve is not None
        run.procs = {
            "ingress": stack.serve.pid,
            **{f"worker{i + 1}": w.pid for i, w in enumerate(stack.workers)},
            "fake": fake.proc.pid,
        }
        db = stack.store_url
        sampler = Sampler(run.procs, db)
        run.points["start"] = sampler.take(with_store=True)
        sampler.start()
        out = tmp / "load.json"
        profiles = {}
        for name in [n for n in args.profile.split(",") if n in run.procs]:
            for mode in ("gil", "wall") if name == "ingress" else ("gil",):
                started = start_profile(name, run.procs[name], args.duration, tmp, mode=mode)
                if started is not None:
                    profiles[started[1].stem.removeprefix("profile-")] = started
                    helpers.append(started[0])
        gen = spawn(
            "openloop",
            [
                PYTHON,
                str(BENCH_DIR / "openloop.py"),
                "--url",
                f"{stack.base}/hooks/github",
                "--rate",
                str(args.rate),
                "--duration",
                str(args.duration),
                "--connections",
                str(args.connections),
                "--timeout",
                str(args.timeout),
                "--queue-timeout",
                str(args.queue_timeout),
                "--prefix",
                "soak",
                "--start-number",
                str(LIMITED_BELOW),
                "--out",
                str(out),
            ],
            env=dict(os.environ),
            log=tmp / "openloop.log",
        )
        helpers.append(gen)
        code = gen.popen.wait(timeout=args.duration + args.queue_timeout + args.timeout + 120)
        if code != 0:
            raise RuntimeError(f"openloop.py failed ({code}):\n{gen.tail()}")
        run.t_load_end = time.monotonic()
        run.gen = json.loads(out.read_text())
        run.t_load = float(run.gen["started"])
        run.points["load end"] = sampler.take(with_store=True)
        for name, (proc, path) in profiles.items():
            try:
                proc.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if name.endswith("-wall"):
                run.writer = writer_lines(path, args.duration)
            else:
                run.profiles[name] = read_profile(path)
            if args.profile_dir is not None:
                args.profile_dir.mkdir(parents=True, exist_ok=True)
                if path.is_file():
                    shutil.copy(path, args.profile_dir / path.name)
        deadline = run.started + args.max_total - TEARDOWN_MARGIN_S
        accepted = sum(1 for r in run.gen["records"] if r[5] == 202)

        def drained() -> bool:
            try:
                events, deliveries = store_counts(db)
            except SQLAlchemyError:
                return False
            stored = sum(events.values())
            still = sum(events.get(s, 0) for s in EVENT_OPEN)
            still += sum(deliveries.get(s, 0) for s in DELIVERY_OPEN)
            return stored >= accepted and still == 0

        while not drained() and time.monotonic() < deadline:
            if not stack.serve.alive() or not all(w.alive() for w in stack.workers):
                raise RuntimeError("a hub process died during the drain")
            pause(1.0)
        run.drained = drained()
        run.t_end = time.monotonic()
        run.points["end"] = sampler.take(with_store=True)
        sampler.stop()
        run.samples = sampler.samples
        run.points["after warm-up"] = sampler.nearest(run.t_load + args.warmup)
        # The store first: a delivery reaches the fake before its row says delivered.
        for ident, delivery, status in read_event_rows(db):
            run.events[ident] = (delivery, status)
        for inbound, status in read_rows(db, "SELECT inbound_id, status FROM deliveries"):
            run.deliveries.setdefault(inbound, []).append(status)
        run.stages = read_stages(db)
        for arrival in fake.arrivals():
            if arrival.status == 200:
                run.arrivals.setdefault(arrival.content, []).append(arrival.at)
        run.peaks = {name: rss_bytes(pid, "VmHWM") for name, pid in run.procs.items()}
    finally:
        try:
            if sampler is not None:
                sampler.stop()
            stop_all(helpers, timeout_s=5)
        finally:
            try:
                if stack is not None:
                    stack.stop()
            finally:
                fake.close()


# --- report -------------------------------------------------------------------------------


def classify(run: Run) -> tuple[Counter[str], dict[str, str]]:
    """Each stored event's end: delivered, dead, filtered, skipped or backlog."""
    ends: dict[str, str] = {}
    for ident, (_, status) in run.events.items():
        statuses = run.deliveries.get(ident, [])
        if status in EVENT_OPEN or any(s in DELIVERY_OPEN for s in statuses):
            ends[ident] = "backlog"
        elif status == "failed" or "dead" in statuses:
            ends[ident] = "dead"
        elif not statuses:
            ends[ident] = "filtered"
        elif all(s == "delivered" for s in statuses):
            ends[ident] = "delivered"
        else:
            ends[ident] = "skipped"
    return Counter(ends.values()), ends


def fmt_ms(value: float, bound: str = "") -> str:
    if value != value:  # nan
        return "n/a"
    if value >= 10_000:
        return f"{bound}{value / 1000:.1f} s"
    return f"{bound}{value:.1f} ms"


def report(run: Run, args: argparse.Namespace) -> list[str]:
    gen = run.gen
    records = gen["records"]
    t0 = run.t_load
    accepted = [r for r in records if r[5] == 202]
    others = Counter(str(r[5]) for r in records if r[5] != 202)
    failed = Counter(f[2] for f in gen["failed"])
    scheduled = int(gen["scheduled"])
    lines = [
        f"machine: {os.cpu_count()} cores; load average {run.load_before:.2f} before, "
        f"{run.load_after:.2f} after",
        f"target: {args.rate:g} events/s for {args.duration:g} s = {scheduled} scheduled; "
        f"{args.workers} workers x {args.threads} threads"
        + (f" at nice {args.nice_workers}" if args.nice_workers else "")
        + f", Redis broker, {'PostgreSQL' if args.store == 'postgres' else 'SQLite'} store",
    ]
    # Ceiling and accepted rate.
    window = (t0 + args.warmup, t0 + args.duration)
    in_window = [r for r in accepted if window[0] <= r[4] < window[1]]
    sustained = len(in_window) / max(1e-9, window[1] - window[0])
    last_answer = max((r[4] for r in accepted), default=t0)
    overall = len(accepted) / max(1e-9, last_answer - t0)
    if run.bare is not None:
        lines.append(
            f"bare Starlette ceiling: {run.bare.rps:,.0f} req/s (best of "
            + ", ".join(f"{x:,.0f}" for x in run.bare_rounds)
            + f"; {run.bare_tool}, 64 connections, server CPU {run.bare.cpu:.0%})"
        )
    ratio = f" = {sustained / run.bare.rps:.1%} of bare" if run.bare else ""
    if run.bare and args.rate < run.bare.rps and sustained >= 0.95 * args.rate:
        ratio += " (kept up with the offered rate: the ratio is bounded by it, not the hub)"
    lines.append(
        f"accepted: {len(accepted)} of {scheduled} (202); sustained {sustained:,.0f}/s "
        f"between {args.warmup:g} s and {args.duration:g} s{ratio}; {overall:,.0f}/s "
        f"from the first send to the last 202"
    )
    lines += [
        f"  not accepted: other statuses {dict(others) or 0}; never sent (no free connection "
        f"within {args.queue_timeout:g} s of schedule) {failed.get('not-sent', 0)}; sent, "
        f"no answer within {args.timeout:g} s {failed.get('timeout-after-send', 0)}; other "
        f"errors { {k: v for k, v in failed.items() if k not in GIVE_UPS} or 0 }",
        f"  the generator fell behind its schedule by at most {gen['max_lag_s'] * 1000:.0f} ms "
        f"and scheduled everything in {gen['schedule_s']:.1f} s",
    ]
    buckets: Counter[int] = Counter(int((r[4] - t0) // 5) for r in accepted)
    lines.append(
        "  202s per second by 5-s window: "
        + " ".join(f"{buckets[b] / 5:.0f}" for b in range(max(buckets, default=-1) + 1))
    )
    # Ack latency.
    ack = [(r[4] - r[2]) * 1000 for r in accepted]
    steady = [(r[4] - r[2]) * 1000 for r in accepted if r[2] >= t0 + args.warmup]
    queued = [(r[3] - r[2]) * 1000 for r in accepted]
    served = [(r[4] - r[3]) * 1000 for r in accepted]
    timeouts = sum(failed.values())
    bound = ">=" if timeouts else ""
    everyone = ack + [f[3] * 1000 for f in gen["failed"]]
    lines.append(
        f"ack latency (scheduled send -> 202): p50 {fmt_ms(percentile(ack, 50))}, "
        f"p99 {fmt_ms(percentile(ack, 99))}, max {fmt_ms(max(ack, default=float('nan')))}; "
        f"after warm-up p50 {fmt_ms(percentile(steady, 50))} p99 "
        f"{fmt_ms(percentile(steady, 99))}"
    )
    lines.append(
        f"  waiting for a free connection in the generator p50 {fmt_ms(percentile(queued, 50))} "
        f"p99 {fmt_ms(percentile(queued, 99))}; at the hub (sent -> 202) p50 "
        f"{fmt_ms(percentile(served, 50))} p99 {fmt_ms(percentile(served, 99))}"
    )
    if timeouts:
        lines.append(
            f"  counting the {timeouts} given-up requests with the time they waited: p50 "
            f"{fmt_ms(percentile(everyone, 50), bound)}, "
            f"p99 {fmt_ms(percentile(everyone, 99), bound)}"
        )
    # End to end.
    ends, per_event = classify(run)
    first = {e: min(times) for e, times in run.arrivals.items()}
    acked = {r[1]: r[4] for r in accepted}
    e2e = [(first.get(e, run.t_end) - at) * 1000 for e, at in acked.items()]
    e2e_bound = ">=" if any(e not in first for e in acked) else ""
    lines.append(
        f"end to end (202 -> arrival at the fake): p50 {fmt_ms(percentile(e2e, 50), e2e_bound)}, "
        f"p99 {fmt_ms(percentile(e2e, 99), e2e_bound)} over {len(acked)} accepted "
        f"({sum(1 for e in acked if e in first)} arrived)"
    )
    if run.stages:
        lines.append(
            "  by stage (the store's timestamps; p50 / p90 / p99): "
            + "; ".join(f"{name} {stage_percentiles(v)}" for name, v in run.stages.items())
        )
    by_window: dict[int, list[float]] = defaultdict(list)
    for e, at in acked.items():
        if e in first:
            by_window[int((at - t0) // 10)].append((first[e] - at) * 1000)
    if by_window:
        lines.append(
            "  p50 by 10-s window of acceptance: "
            + ", ".join(
                f"{w * 10}-{w * 10 + 10}s {fmt_ms(percentile(v, 50))}"
                for w, v in sorted(by_window.items())
            )
        )
    times = sorted(first[e] for e in acked if e in first)
    if len(times) > 1:
        lines.append(
            f"  deliveries/s, first to last arrival: {len(times) / (times[-1] - times[0]):.1f}"
        )
    # Backlog and drain.
    load_end = run.points["load end"].store
    if load_end is not None:
        events, deliveries = load_end
        backlog = sum(events.get(s, 0) for s in EVENT_OPEN)
        lines.append(
            f"backlog when the load stopped ({run.t_load_end - t0:.0f} s): {backlog} events "
            f"not yet processed, {sum(deliveries.get(s, 0) for s in DELIVERY_OPEN)} deliveries "
            f"pending; rows {events} / {deliveries}"
        )
    drain_s = run.t_end - run.t_load_end
    completed_during_drain = _completed(run.points["end"]) - _completed(run.points["load end"])
    rate = completed_during_drain / max(1e-9, drain_s)
    if run.drained:
        lines.append(
            f"drain: everything final {drain_s:.0f} s after the load stopped "
            f"({rate:.0f} events/s completed during the drain)"
        )
    else:
        left = ends.get("backlog", 0)
        lines.append(
            f"drain: NOT finished at the time cap, {drain_s:.0f} s after the load: {left} "
            f"events still in the backlog, completing {rate:.0f}/s (about "
            f"{left / max(rate, 1e-9):.0f} s more)"
        )
    timeline = [s for s in run.samples if s.store is not None and s.at >= t0]
    if timeline:
        step = max(1, len(timeline) // 12)
        lines.append(
            "  unprocessed events over time: "
            + ", ".join(
                f"{s.at - t0:.0f}s {sum(s.store[0].get(x, 0) for x in EVENT_OPEN)}"
                for s in timeline[::step]
                if s.store is not None
            )
        )
    # Accounting.
    stored_ids = set(run.events)
    lost = [e for e in acked if e not in stored_ids]
    by_delivery = {d: ident for ident, (d, _) in run.events.items()}
    given_up_stored = sum(1 for f in gen["failed"] if f[0] in by_delivery)
    arrived_twice = sum(1 for times in run.arrivals.values() if len(times) > 1)
    not_at_fake = sum(1 for e, end in per_event.items() if end == "delivered" and e not in first)
    lines.append(
        f"accounting: {len(acked)} acknowledged, {len(stored_ids)} stored "
        f"({given_up_stored} of the {timeouts} given-up requests were stored anyway); "
        f"lost (202 but no row) {len(lost)}; ends of the stored events: "
        + ", ".join(
            f"{k} {ends.get(k, 0)}" for k in ("delivered", "dead", "filtered", "skipped", "backlog")
        )
    )
    lines.append(
        f"  cross-check at the fake: {len(first)} distinct events arrived, {arrived_twice} "
        f"arrived more than once (at-least-once), {not_at_fake} marked delivered but never seen"
    )
    # Memory.
    names = list(run.procs)
    lines.append(
        f"RSS (MB)      {'start':>8} {'warm-up':>8} {'load end':>8} {'end':>8} {'peak':>8} "
        f"{'growth after warm-up':>22}"
    )
    worst = 0.0
    for name in names:
        values = [run.points[p].rss.get(name, 0) / MB for p in ("start", "after warm-up")]
        values += [run.points[p].rss.get(name, 0) / MB for p in ("load end", "end")]
        growth = values[3] - values[1]
        if name != "fake":
            worst = max(worst, growth)
        lines.append(
            f"  {name:<11} {values[0]:>8.1f} {values[1]:>8.1f} {values[2]:>8.1f} "
            f"{values[3]:>8.1f} {run.peaks.get(name, 0) / MB:>8.1f} {growth:>+21.1f}"
        )
    timeline = run.samples[:: max(1, len(run.samples) // 10)]
    for name in names:
        lines.append(
            f"  {name} over time: "
            + ", ".join(f"{x.at - t0:.0f}s {x.rss.get(name, 0) / MB:.0f}" for x in timeline)
        )
    lines.append(
        f"  bound: < {args.rss_bound_mb:g} MB growth after warm-up per hub process: "
        f"{'met' if worst < args.rss_bound_mb else 'EXCEEDED'} (worst {worst:+.1f} MB; the "
        "fake keeps one record per request by design and is not held to it)"
    )
    # CPU.
    start, load_end_s, end = run.points["start"], run.points["load end"], run.points["end"]
    wall_load = run.t_load_end - t0
    lines.append(
        f"CPU seconds during the load ({wall_load:.0f} s x {os.cpu_count()} cores): "
        + ", ".join(f"{n} {load_end_s.cpu[n] - start.cpu[n]:.1f}" for n in names)
        + f"; during the drain ({drain_s:.0f} s): "
        + ", ".join(f"{n} {end.cpu[n] - load_end_s.cpu[n]:.1f}" for n in names)
    )
    lines += goal_lines(args, steady, e2e, e2e_bound, drain_s, run.drained, worst, ends)
    for name, profile in run.profiles.items():
        lines += profile_lines(name, profile)
    if run.writer:
        lines.append("ingress writer, wall clock (py-spy --idle; the two steps run in turn):")
        lines += run.writer
    return lines


def goal_lines(
    args: argparse.Namespace,
    ack: list[float],
    e2e: list[float],
    e2e_bound: str,
    drain_s: float,
    drained: bool,
    rss_growth_mb: float,
    ends: dict[str, int],
) -> list[str]:
    """Issue #18's goals for this rate beside this run's figures."""
    lines = [f"goals (issue #18) at {args.rate:g}/s:"]
    lost = ends.get("backlog", 0) + ends.get("dead", 0)
    lines.append(f"  every event delivered: {lost} not delivered")
    lines.append(f"  ack p99 after warm-up {fmt_ms(percentile(ack, 99))}   goal < 10 ms")
    e2e_goal = 100 if args.rate <= 500 else 250
    lines.append(
        f"  end to end p99 {fmt_ms(percentile(e2e, 99), e2e_bound)}   goal < {e2e_goal} ms"
    )
    if args.rate > 500:
        finished = f"{drain_s:.0f} s" if drained else f"not within the cap ({drain_s:.0f} s)"
        lines.append(f"  drained after the load: {finished}   goal within 5 s")
    lines.append(f"  worker RSS growth {rss_growth_mb:+.1f} MB   goal <= 50 MB")
    return lines


def _completed(sample: Sample) -> int:
    if sample.store is None:
        return 0
    events = sample.store[0]
    return sum(n for status, n in events.items() if status not in EVENT_OPEN)


def profile_lines(name: str, profile: Profile | None) -> list[str]:
    if profile is None:
        return [f"profile {name}: no samples (py-spy missing or not permitted)"]
    lines = [
        f"profile {name} (py-spy 100 Hz, " + "samples holding the GIL" + f": {profile.samples}):",
        "  inclusive: " + "; ".join(f"{frame} {share:.0%}" for frame, share in profile.inclusive),
        "  self: " + "; ".join(f"{frame} {share:.0%}" for frame, share in profile.own),
        "  charged to the deepest hub frame: "
        + "; ".join(f"{frame} {share:.0%}" for frame, share in profile.attributed),
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="target events/s")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--quick", action="store_true", help="200/s for 10 s, short ceiling")
    parser.add_argument("--warmup", type=float, default=10.0, help="s of load counted as warm-up")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--store",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="postgres: a fresh database on 127.0.0.1:5432",
    )
    parser.add_argument(
        "--nice-workers", type=int, default=0, help="CPU niceness of the worker processes"
    )
    parser.add_argument("--connections", type=int, default=256, help="generator connections")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="a sent request is given up after (s)"
    )
    parser.add_argument(
        "--queue-timeout",
        type=float,
        default=10.0,
        help="a due request not sent within this (no free connection) is dropped (s)",
    )
    parser.add_argument("--bare-rounds", type=int, default=3)
    parser.add_argument("--bare-seconds", type=float, default=4.0)
    parser.add_argument("--no-wrk", action="store_true", help="bare ceiling with Python only")
    parser.add_argument(
        "--max-total", type=float, default=600.0, help="cap on the whole run, drain included"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=180.0, help="s to wait for the hub to start"
    )
    parser.add_argument("--rss-bound-mb", type=float, default=50.0)
    parser.add_argument(
        "--profile", default="ingress,worker1", help="processes for py-spy ('' for none)"
    )
    parser.add_argument(
        "--profile-dir", type=Path, help="keep py-spy's collapsed stacks (flamegraph input) here"
    )
    parser.add_argument(
        "--keep-dir", type=Path, help="copy the run's directory (store, config, logs) here"
    )
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--tree", type=Path, help="run the hub of another checkout (a git worktree)"
    )
    args = parser.parse_args()
    if args.tree is not None:
        use_tree(args.tree)
    if args.quick:
        args.rate, args.duration, args.warmup = 200.0, 10.0, 2.0
        args.bare_rounds, args.bare_seconds, args.max_total = 2, 2.0, 150.0
    if why := redis_available(args.redis_url):
        sys.exit(f"the load run needs Redis at {args.redis_url}: {why}")
    run = Run(args=vars(args).copy())
    run.started = time.monotonic()
    run.load_before = os.getloadavg()[0]
    print(f"load average {run.load_before:.2f}; measuring the bare ceiling ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="sb-load-") as name:
        tmp = Path(name)
        run.bare, run.bare_rounds, wrk = bare_ceiling(args, tmp)
        run.bare_tool = "wrk -t2" if wrk else "Python closed loop (may bottleneck the bare app)"
        print(
            f"bare: {run.bare.rps:,.0f} req/s; starting the hub and {args.rate:g}/s for "
            f"{args.duration:g} s ...",
            flush=True,
        )
        run_load(args, tmp, run)
        if args.keep_dir is not None:
            shutil.copytree(tmp, args.keep_dir, dirs_exist_ok=True)
    run.load_after = os.getloadavg()[0]
    lines = report(run, args)
    lines.append(f"took {time.monotonic() - run.started:.0f} s (cap {args.max_total:g} s)")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"report": lines, "args": run.args}, indent=1, default=str))


if __name__ == "__main__":
    main()
