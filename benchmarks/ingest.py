"""Ingress cost against a bare Starlette app, in one run: "ingress answers 202 in milliseconds".

Goals (issue #18): with signature verification and durability, `serve --no-worker` keeps
at least 25% of the requests/s of a bare app that answers 202 to any POST (and 0.9x a
naive durable app), embedded `serve` 15%, on the same machine, the same uvicorn settings
and the same load; ack p99 < 10 ms at 1,000/s. Machines are noisy, so the figure that
matters is the ratio hub/bare measured in one run, not the absolute numbers.

Targets, each a fresh process under uvicorn on a free 127.0.0.1 port:
  bare      a Starlette app reading the body and answering 202 {"id": ...}
  embedded  `switchboard serve`: SQLite + the in-process worker (rules match nothing the
            load sends, so the worker only claims, normalizes and closes each event)
  redis     `switchboard serve --no-worker`: SQLite + Redis broker, ingress alone
All targets start together; every target not being measured is SIGSTOPped, so neither an
idle server nor the embedded worker's backlog takes CPU from the one under load.
The load is real GitHub `issues` payloads (every shared fixture in turn, 10-13 KB), each
signed, each with a unique X-GitHub-Delivery. Phases:
  warm-up     closed loop for --warmup s (counted for losses, not reported)
  latency     open loop at --rate req/s (Python generator in its own process): p50/p99
              from each request's scheduled send time, so queueing is not hidden
  throughput  closed loop over --connections keep-alive connections, --rounds rounds of
              --duration s, targets interleaved, best round kept (the least disturbed, as
              in benchmarks/rules.py); with wrk (apt-get install wrk), else the Python
              generator, which may then be the bottleneck for the bare app
Floor: the hub's own per-request work, timed in this process without HTTP (verify =
HMAC + JSON check, the event id, the SQLite insert per row in batches of 64, the Redis
enqueue per id pipelined in 64s), set against the bare app's CPU per request: the share
of bare that a hub whose HTTP part cost nothing more than bare's could reach on one core.
Nothing lost: after the load each hub is SIGKILLed (a 202 must already be durable), then
its events rows are counted per phase. The Python phases must match exactly: every
accepted delivery id has a row and no other row exists. wrk cannot drain its last
requests, so its rows may exceed its 202s by at most the requests in flight when it
stopped (<= --connections per round); fewer rows than 202s is a loss.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import math
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from harness import (
    DEFAULT_REDIS_URL,
    DELIVERY_ID_COLUMNS,
    REPO,
    SECRET,
    LoadResult,
    Proc,
    cleanup_redis,
    cpu_seconds,
    free_port,
    hub_args,
    hub_env,
    issue_fixtures,
    new_namespace,
    percentile,
    redis_available,
    run_loadgen,
    sign,
    spawn,
    use_tree,
    wait_http,
    write_config,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TARGETS = ("bare", "naive", "embedded", "redis", "redis-loop")
#: Rules that never match an `issues` event: the embedded worker does its minimum per event.
IDLE_RULES = """
rules:
  - id: pushes-only
    on: github.push
    actions:
      - log: {to: inbox, message: "{{ event.id }}"}
"""
DESTINATIONS = """
  inbox:
    connector: log
    path: inbox.log
"""


# --- the floor: what every accepted request must cost ------------------------------------


@dataclass
class Floor:
    """Microseconds per request of each step ingress cannot skip (best of 5 passes)."""

    verify_us: float
    event_id_us: float
    insert_us: float
    enqueue_us: float

    @property
    def total_us(self) -> float:
        """The sum; without the enqueue when Redis was down (then a lower bound)."""
        enqueue = 0.0 if math.isnan(self.enqueue_us) else self.enqueue_us
        return self.verify_us + self.event_id_us + self.insert_us + enqueue


def _best_us(step: Callable[[], object], per: int, passes: int = 5) -> float:
    best = float("inf")
    for _ in range(passes):
        started = time.perf_counter()
        step()
        best = min(best, (time.perf_counter() - started) / per * 1e6)
    return best


def measure_floor(redis_url: str | None, tmp: Path) -> Floor:
    """Time verify, event id, insert and enqueue on the real fixtures, in this process."""
    from hub.clock import SystemClock
    from hub.events import event_id_for
    from hub.pipeline.queue import Queue, make_broker
    from hub.secrets import Secret
    from hub.sources.base import HookRequest
    from hub.sources.github import GitHubSource
    from hub.store import NewInbound, open_store

    bodies = [body for _, body in issue_fixtures()]
    batch = 64
    clock = SystemClock()
    hooks = [
        HookRequest(
            source="github",
            headers={
                "content-type": "application/json",
                "x-github-event": "issues",
                "x-github-delivery": f"floor-{i}",
                "x-hub-signature-256": sign(bodies[i % len(bodies)]),
            },
            body=bodies[i % len(bodies)],
            received_at=clock.now(),
        )
        for i in range(batch)
    ]
    source, secret = GitHubSource(), Secret(SECRET)
    verify_us = _best_us(lambda: [source.verify(h, secret, clock) for h in hooks], batch)
    event_id_us = _best_us(lambda: [event_id_for("github", f"d-{i}") for i in range(batch)], batch)
    store = open_store(f"sqlite:///{tmp / 'floor.db'}")

    def insert() -> None:
        store.insert_events(
            [
                NewInbound(
                    id=uuid.uuid4().hex,
                    source="github",
                    provider_delivery_id=uuid.uuid4().hex,
                    received_at=time.time(),  # noqa: TID251 - a row's wall-clock time
                    headers=dict(h.headers),
                    body=h.body,
                )
                for h in hooks
            ]
        )

    insert_us = _best_us(insert, batch)
    store.close()
    enqueue_us = float("nan")
    if redis_url is not None:
        namespace = new_namespace("floor")
        queue = Queue(make_broker(redis_url, namespace=namespace))
        ids = [uuid.uuid4().hex for _ in range(batch)]
        enqueue_us = _best_us(lambda: queue.enqueue_events(ids), batch)
        queue.close()
        cleanup_redis(redis_url, namespace)
    return Floor(verify_us, event_id_us, insert_us, enqueue_us)


# --- the bare app -----------------------------------------------------------------------


def _hook_app(accept: Callable[[Request], Awaitable[Response]]) -> Starlette:
    """An app answering webhooks (POST /hooks/{source}) with `accept`, with a /healthz."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/hooks/{source}", accept, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def bare_app() -> Starlette:
    async def accept(request: Request) -> Response:
        await request.body()
        return JSONResponse({"id": uuid.uuid4().hex}, status_code=202)

    return _hook_app(accept)


def naive_app(db: Path) -> Starlette:
    """The naive durable app: HMAC check and one SQLite INSERT + commit per request.

    No JSON check, no deduplication, no broker: what a hand-written webhook receiver does.
    Its store has the `events.provider_delivery_id` column `rows_by_prefix` counts."""
    conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS events (provider_delivery_id TEXT, body BLOB)")
    secret = SECRET.encode()

    async def accept(request: Request) -> Response:
        body = await request.body()
        want = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("x-hub-signature-256", ""), want):
            return JSONResponse({"code": "bad_signature"}, status_code=401)
        delivery = request.headers.get("x-github-delivery", "")
        conn.execute(
            "INSERT INTO events (provider_delivery_id, body) VALUES (?, ?)", (delivery, body)
        )
        return JSONResponse({"id": delivery}, status_code=202)

    return _hook_app(accept)


def serve_naive(port: int, db: Path) -> None:
    uvicorn.run(naive_app(db), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_bare(port: int) -> None:
    # The same uvicorn settings as `switchboard serve` (hub/cli.py).
    uvicorn.run(bare_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- wrk --------------------------------------------------------------------------------

_WRK_SCRIPT = """
local bodies = {%(bodies)s}
local sigs = {%(sigs)s}
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  counter = 0
  statuses = {}
end
function request()
  counter = counter + 1
  local i = (counter %% #bodies) + 1
  return wrk.format("POST", "/hooks/github", {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "issues",
    ["X-GitHub-Delivery"] = "%(prefix)s-" .. tid .. "-" .. counter,
    ["X-Hub-Signature-256"] = sigs[i],
  }, bodies[i])
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for s, n in pairs(t:get("statuses")) do total[s] = (total[s] or 0) + n end
  end
  local parts = {}
  for s, n in pairs(total) do table.insert(parts, s .. ":" .. n) end
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%%d duration_us=%%d p50_us=%%d p99_us=%%d max_us=%%d " ..
    "connect=%%d read=%%d write=%%d timeout=%%d statuses=%%s\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.timeout, table.concat(parts, ",")))
end
"""


def _lua_string(text: str) -> str:
    level = 1
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def wrk_script(path: Path, prefix: str) -> None:
    fixtures = [body.decode() for _, body in issue_fixtures()]
    path.write_text(
        _WRK_SCRIPT
        % {
            "bodies": ",\n".join(_lua_string(b) for b in fixtures),
            "sigs": ", ".join(f'"{sign(b.encode())}"' for b in fixtures),
            "prefix": prefix,
        }
    )


@dataclass
class Throughput:
    tool: str
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    accepted: int
    other_statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    #: delivery-id prefix of this phase, to count its rows
    prefix: str = ""
    exact: bool = True
    #: CPU seconds the server process used per wall second of the round (1.0 = one core)
    cpu: float = float("nan")


def run_wrk(url: str, *, connections: int, duration: float, prefix: str, tmp: Path) -> Throughput:
    script = tmp / f"{prefix}.lua"
    wrk_script(script, prefix)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 60,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRK ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    fields = dict(re.findall(r"(\w+)=(\S*)", line))
    statuses = dict(p.split(":") for p in fields["statuses"].split(",") if p)
    accepted = int(statuses.pop("202", 0))
    errors = {k: int(fields[k]) for k in ("connect", "read", "write", "timeout") if int(fields[k])}
    return Throughput(
        tool=f"wrk -t2 -c{connections}",
        rps=int(fields["requests"]) / (int(fields["duration_us"]) / 1e6),
        p50_ms=int(fields["p50_us"]) / 1000,
        p99_ms=int(fields["p99_us"]) / 1000,
        max_ms=int(fields["max_us"]) / 1000,
        accepted=accepted,
        other_statuses={k: int(v) for k, v in statuses.items()},
        errors=errors,
        prefix=prefix,
        exact=False,
    )


def run_python_closed(
    url: str, *, connections: int, duration: float, prefix: str, tmp: Path
) -> tuple[Throughput, set[str]]:
    result = run_loadgen(
        url,
        rate=0,
        duration_s=duration,
        concurrency=connections,
        payloads="fixtures",
        prefix=prefix,
        out=tmp / f"{prefix}.json",
    )
    lat = [(r[4] - r[3]) * 1000 for r in result.accepted]
    others = {k: v for k, v in result.statuses.items() if k != "202"}
    return (
        Throughput(
            tool=f"python closed loop c={connections}",
            rps=len(result.records) / result.elapsed_s,
            p50_ms=percentile(lat, 50),
            p99_ms=percentile(lat, 99),
            max_ms=max(lat, default=float("nan")),
            accepted=len(result.accepted),
            other_statuses=others,
            errors=result.errors,
            prefix=prefix,
        ),
        {r[0] for r in result.accepted},
    )


# --- targets --------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    proc: Proc
    url: str
    db: Path | None
    namespace: str
    rounds: list[Throughput] = field(default_factory=list)
    open_loop: LoadResult | None = None
    #: phase -> delivery ids answered 202 (Python generator phases only: exact)
    accepted_ids: dict[str, set[str]] = field(default_factory=dict)
    #: phase -> (accepted, rows, check passed)
    accounting: dict[str, tuple[int, int, bool]] = field(default_factory=dict)

    def pause(self) -> None:
        """SIGSTOP: an idle target (or the embedded worker's backlog) takes no CPU from
        the target being measured."""
        if self.proc.alive():
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.proc.alive():
            os.kill(self.proc.pid, signal.SIGCONT)

    @property
    def best(self) -> Throughput:
        return max(self.rounds, key=lambda t: t.rps)


def start_target(name: str, tmp: Path, redis_url: str, suffix: str = "") -> Target:
    work = tmp / (name + suffix)
    work.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/github"
    if name == "bare":
        args = [sys.executable, __file__, "--serve-bare", str(port)]
        return Target(name, spawn(name, args, env=hub_env(), log=work / "serve.log"), url, None, "")
    if name == "naive":
        db = work / "naive.db"
        args = [sys.executable, __file__, "--serve-naive", str(port), "--naive-db", str(db)]
        return Target(name, spawn(name, args, env=hub_env(), log=work / "serve.log"), url, db, "")
    # redis-loop: `serve --no-worker` with its group commit on the event loop, not a thread
    broker = name.startswith("redis")
    namespace = new_namespace("ingest") if broker else "switchboard"
    config = write_config(
        work,
        broker_url=redis_url if broker else "embedded",
        namespace=namespace,
        rules=IDLE_RULES,
        destinations=DESTINATIONS,
        group_commit="loop" if name == "redis-loop" else "thread",
    )
    extra = ["--no-worker"] if broker else []
    args = hub_args(config, "serve", "--port", str(port), *extra)
    proc = spawn(name + suffix, args, env=hub_env(), log=work / "serve.log")
    return Target(name + suffix, proc, url, work / "hub.db", namespace if name == "redis" else "")


def rows_by_prefix(db: Path) -> dict[str, set[str]]:
    with sqlite3.connect(db) as conn:
        names = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
        column = next(c for c in DELIVERY_ID_COLUMNS if c in names)
        sql = f"SELECT {column} FROM events"  # noqa: S608 - a name from DELIVERY_ID_COLUMNS
        ids = [r[0] for r in conn.execute(sql)]
    out: dict[str, set[str]] = {}
    for delivery in ids:
        out.setdefault(delivery.split("-", 1)[0], set()).add(delivery)
    return out


def check_nothing_lost(target: Target, connections: int) -> None:
    assert target.db is not None
    rows = rows_by_prefix(target.db)
    for phase, ids in target.accepted_ids.items():
        stored = rows.get(phase, set())
        target.accounting[phase] = (len(ids), len(stored), stored == ids)
    wrk_rounds = [t for t in target.rounds if not t.exact]
    if wrk_rounds:
        accepted = sum(t.accepted for t in wrk_rounds)
        stored_wrk = sum(len(rows.get(t.prefix, set())) for t in wrk_rounds)
        in_flight = connections * len(wrk_rounds)
        ok = accepted <= stored_wrk <= accepted + in_flight
        target.accounting["wrk"] = (accepted, stored_wrk, ok)


def measure(targets: list[Target], args: argparse.Namespace, tmp: Path, use_wrk: bool) -> None:
    for target in targets:
        wait_http(target.url.replace("/hooks/github", "/healthz"), 30, [target.proc])
        target.pause()
    for target in targets:  # warm-up and the open-loop latency phase, one target at a time
        target.resume()
        if args.warmup > 0:
            warm = run_loadgen(
                target.url,
                rate=0,
                duration_s=args.warmup,
                concurrency=args.connections,
                payloads="fixtures",
                prefix="warm",
                out=tmp / f"{target.name}-warm.json",
            )
            target.accepted_ids["warm"] = {r[0] for r in warm.accepted}
        target.open_loop = run_loadgen(
            target.url,
            rate=args.rate,
            duration_s=args.latency_duration,
            concurrency=args.connections,
            payloads="fixtures",
            prefix="open",
            out=tmp / f"{target.name}-open.json",
        )
        target.accepted_ids["open"] = {r[0] for r in target.open_loop.accepted}
        target.pause()
    for round_no in range(args.rounds):  # throughput: targets interleaved, best round counts
        for target in targets:
            target.resume()
            prefix = f"{'wrk' if use_wrk else 'closed'}{round_no}"
            cpu_before, started = cpu_seconds(target.proc.pid), time.monotonic()
            if use_wrk:
                tput = run_wrk(
                    target.url,
                    connections=args.connections,
                    duration=args.duration,
                    prefix=prefix,
                    tmp=tmp,
                )
            else:
                tput, ids = run_python_closed(
                    target.url,
                    connections=args.connections,
                    duration=args.duration,
                    prefix=prefix,
                    tmp=tmp,
                )
                target.accepted_ids[prefix] = ids
            tput.cpu = (cpu_seconds(target.proc.pid) - cpu_before) / (time.monotonic() - started)
            target.rounds.append(tput)
            target.pause()
            if not target.proc.alive():
                raise RuntimeError(f"{target.name} died under load:\n{target.proc.tail()}")


# --- report -----------------------------------------------------------------------------


def report_floor(floor: Floor, bare: Target | None) -> None:
    print(
        f"\nfloor: the hub's own work per request, in-process, no HTTP: {floor.total_us:.0f} us "
        f"(verify {floor.verify_us:.0f}, event id {floor.event_id_us:.1f}, "
        f"insert {floor.insert_us:.0f} per row in 64s, "
        + (
            "enqueue not measured: Redis is down)"
            if math.isnan(floor.enqueue_us)
            else f"enqueue {floor.enqueue_us:.0f} per id)"
        )
    )
    if bare is None or not bare.best.cpu > 0:
        return
    bare_us = bare.best.cpu / bare.best.rps * 1e6
    bound = bare_us / (bare_us + floor.total_us)
    print(
        f"  bare costs {bare_us:.0f} us of CPU per request; with that HTTP cost and nothing "
        f"else, one core allows at most {bound:.0%} of bare (ingress's own writer thread "
        "overlaps some of it on a second core)"
    )


def report(targets: list[Target], args: argparse.Namespace, use_wrk: bool) -> None:
    bare = next((t for t in targets if t.name == "bare"), None)
    tool = targets[0].best.tool
    print(
        f"\nthroughput: closed loop, {tool}, best of {args.rounds} interleaved rounds "
        f"of {args.duration:g}s"
    )
    print(
        f"  {'target':<9} {'req/s':>8} {'p50':>9} {'p99':>9} {'max':>9}  {'vs bare':>7} "
        f"{'cpu':>5}  rounds"
    )
    for target in targets:
        t = target.best
        ratio = f"{t.rps / bare.best.rps:>7.0%}" if bare and target is not bare else " " * 7
        rounds = ", ".join(f"{r.rps:,.0f}" for r in target.rounds)
        notes = ""
        others = {k: v for r in target.rounds for k, v in {**r.other_statuses, **r.errors}.items()}
        if others:
            notes = f"  non-202/errors: {others}"
        print(
            f"  {target.name:<9} {t.rps:>8,.0f} {t.p50_ms:>7.2f}ms {t.p99_ms:>7.2f}ms "
            f"{t.max_ms:>7.1f}ms  {ratio} {t.cpu:>5.0%}  {rounds}{notes}"
        )
    print(
        f"\nlatency: open loop at {args.rate:g} req/s for {args.latency_duration:g}s "
        "(Python generator, measured from each request's scheduled send time)"
    )
    print(f"  {'target':<9} {'achieved':>9} {'p50':>9} {'p99':>9} {'max':>9} {'gen lag':>9}")
    for target in targets:
        run = target.open_loop
        assert run is not None
        lat = run.latencies_ms()
        others = {**{k: v for k, v in run.statuses.items() if k != "202"}, **run.errors}
        extra = f"  non-202/errors: {others}" if others else ""
        print(
            f"  {target.name:<9} {len(run.records) / run.elapsed_s:>7,.0f}/s "
            f"{percentile(lat, 50):>7.2f}ms {percentile(lat, 99):>7.2f}ms "
            f"{max(lat, default=float('nan')):>7.1f}ms {run.max_lag_s * 1000:>7.1f}ms{extra}"
        )
    print("  (cpu: the server process's CPU time / wall time in its best round; 100% = 1 core)")
    hubs = [t for t in targets if t.accounting]
    if hubs:
        print("\nnothing lost: 202 answers vs events rows, counted after SIGKILL of the hub")
        for target in hubs:
            for phase, (accepted, rows, ok) in target.accounting.items():
                rule = "rows >= 202s, <= 202s + in flight at stop" if phase == "wrk" else "same ids"
                print(
                    f"  {target.name:<9} {phase:<8} accepted {accepted:>7,}  rows {rows:>7,}  "
                    f"{'ok' if ok else 'MISMATCH'} ({rule})"
                )
    if bare:
        for target in targets:
            if target is not bare:
                share = target.best.rps / bare.best.rps
                print(f"ratio {target.name}/bare: {share:.0%} of bare req/s (goals below)")
    if not use_wrk and bare:
        print(
            "warning: without wrk the Python generator may be the bottleneck for the bare app, "
            "so the ratios above overstate the hub (apt-get install wrk)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="short phases, bare + embedded")
    parser.add_argument("--targets", default=None, help=f"comma list of {', '.join(TARGETS)}")
    parser.add_argument("--duration", type=float, default=4.0, help="one throughput round, s")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds per target")
    parser.add_argument("--latency-duration", type=float, default=4.0, help="open loop phase, s")
    parser.add_argument("--rate", type=float, default=1000.0, help="open loop req/s")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout (git worktree of an older commit): its embedded and redis hubs "
        "are measured too, as embedded@before and redis@before, in the same run",
    )
    parser.add_argument("--no-wrk", action="store_true", help="use the Python generator only")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-naive", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--naive-db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_naive:
        serve_naive(args.serve_naive, args.naive_db)
        return
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    if args.quick:
        args.duration, args.rounds, args.latency_duration, args.warmup = 2.0, 2, 1.5, 0.0
    names = args.targets.split(",") if args.targets else None
    if names is None:
        names = ["bare", "embedded"] if args.quick else list(TARGETS)
    if (why := redis_available(args.redis_url)) and any(n.startswith("redis") for n in names):
        print(f"skipping the redis targets: Redis at {args.redis_url} is down ({why})")
        names = [n for n in names if not n.startswith("redis")]
    use_wrk = not args.no_wrk and shutil.which("wrk") is not None
    if not use_wrk and not args.no_wrk:
        print("wrk not found: falling back to the Python load generator")
    print(
        f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} "
        "(other work on the machine skews every figure; the ratio is what to compare)"
    )
    with tempfile.TemporaryDirectory(prefix="sb-ingest-") as tmp:
        targets: list[Target] = []
        try:
            for name in names:
                targets.append(start_target(name, Path(tmp), args.redis_url))
            if args.before is not None:
                use_tree(args.before)
                for name in ("embedded", "redis"):
                    if name in names:
                        target = start_target(name, Path(tmp), args.redis_url, "@before")
                        targets.append(target)
                use_tree(REPO)
            measure(targets, args, Path(tmp), use_wrk)
        finally:
            for target in targets:
                target.resume()
                target.proc.kill()  # SIGKILL: whatever was answered 202 must be on disk
                if target.namespace:
                    cleanup_redis(args.redis_url, target.namespace)
        for target in targets:
            if target.db is not None:
                check_nothing_lost(target, args.connections)
        # The floor's enqueue is the production path (Redis) whichever targets ran.
        floor = measure_floor(
            None if redis_available(args.redis_url) else args.redis_url, Path(tmp)
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    report(targets, args, use_wrk)
    report_floor(floor, next((t for t in targets if t.name == "bare"), None))
    report_goals(targets)


def report_goals(targets: list[Target]) -> None:
    """Issue #18's ingest goals beside this run's figures."""
    by_name = {t.name: t for t in targets}
    bare, naive = by_name.get("bare"), by_name.get("naive")
    print("\ngoals (issue #18):")
    for name, goal in (("redis", 0.25), ("embedded", 0.15)):
        hub = by_name.get(name)
        if hub is not None and bare is not None:
            print(
                f"  {name:<9} {hub.best.rps / bare.best.rps:>5.0%} of bare       goal >= {goal:.0%}"
            )
    hub, loop = by_name.get("redis"), by_name.get("redis-loop")
    if hub is not None and loop is not None:
        print(
            f"  group commit on the loop / in a thread: {loop.best.rps / hub.best.rps:.2f}x req/s"
        )
    if hub is not None and naive is not None:
        print(f"  redis     {hub.best.rps / naive.best.rps:>5.2f}x the naive app  goal >= 0.9x")
    if hub is not None and hub.open_loop is not None:
        p99 = percentile(hub.open_loop.latencies_ms(), 99)
        print(f"  redis     ack p99 {p99:.1f} ms (open loop)   goal < 10 ms at 1,000/s")
    for name in ("embedded", "redis"):
        now, before = by_name.get(name), by_name.get(f"{name}@before")
        if now is not None and before is not None:
            print(f"  {name:<9} {now.best.rps / before.best.rps:.2f}x req/s of {name}@before")


if __name__ == "__main__":
    main()
