"""Worker cost per event, in one run: how fast do workers drain a backlog, and what does
each event cost them?

The end-to-end goals (load.py, delivery.py) are bounded by worker throughput; this
measures it on its own. Ingress (`serve --no-worker`) accepts --events signed
`issues.opened` webhooks while no worker runs, so they wait in Redis as a backlog; then
workers start and drain it: each event is claimed, normalized, matched, rendered,
planned as one Discord delivery, claimed again, sent to the fast fake Discord
(benchmarks/fake_discord.py) and recorded. Figures per phase: events/s from the first
worker's start to the last delivery row `delivered`, worker CPU ms per event (user +
system from /proc), and context switches per event (every thread of every worker).
Phases: 1 worker, then --workers workers on a fresh backlog; the ratio of their rates
is the scaling on this machine (2 cores: the workers share them with ingress idling,
the fake and Redis). All on 127.0.0.1; Redis keys under a unique `sbbench-*` prefix.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from delivery import LIMITED_BELOW, Fake, Stack
from harness import DEFAULT_REDIS_URL, Proc, cpu_seconds, redis_available, wait_for


@dataclass
class Drain:
    workers: int
    events: int
    seconds: float
    cpu_s: float
    switches: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s / self.events * 1000


def context_switches(pid: int) -> int:
    """Voluntary + involuntary switches of every thread of `pid` so far."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        try:
            for line in status.read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
        except OSError:
            continue  # a thread that ended while we read
    return total


def drain(tmp: Path, name: str, *, workers: int, events: int, threads: int, redis: str) -> Drain:
    fake = Fake(tmp)
    stack = Stack.start(
        tmp, name, fake, workers=0, threads=threads, lease_s=60, redis_url=redis
    ).ready()
    try:
        fake.reset()  # unlimited: a fast destination
        ids = {stack.post(LIMITED_BELOW + n)[0] for n in range(events)}
        procs: list[Proc] = [stack.add_worker(wait=True) for _ in range(workers)]
        cpu = {p.pid: cpu_seconds(p.pid) for p in procs}
        switches = {p.pid: context_switches(p.pid) for p in procs}
        started = time.monotonic()
        done = wait_for(
            lambda: stack.delivery_statuses(ids).get("delivered", 0) >= events, 600, 0.25
        )
        seconds = time.monotonic() - started
        if not done:
            raise RuntimeError(f"not drained within 600 s: {stack.snapshot()}")
        return Drain(
            workers=workers,
            events=events,
            seconds=seconds,
            cpu_s=sum(cpu_seconds(p.pid) - cpu[p.pid] for p in procs),
            switches=sum(context_switches(p.pid) - switches[p.pid] for p in procs),
        )
    finally:
        stack.stop()
        fake.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=2, help="workers in the second phase")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="300 events")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    args = parser.parse_args()
    if why := redis_available(args.redis_url):
        raise SystemExit(f"Redis at {args.redis_url} is down: {why}")
    events = 300 if args.quick else args.events
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="sb-drain-") as tmp:
        runs = [
            drain(
                Path(tmp),
                f"drain{phase}-{w}",
                workers=w,
                events=events,
                threads=args.threads,
                redis=args.redis_url,
            )
            for phase, w in enumerate((1, args.workers))
        ]
    print(
        f"{events} issues.opened events, each one Discord delivery, {args.threads} threads/worker"
    )
    print(f"  {'workers':>7} {'events/s':>9} {'CPU ms/event':>13} {'switches/event':>15}")
    for run in runs:
        print(
            f"  {run.workers:>7} {run.rate:>9.0f} {run.cpu_ms:>13.1f} "
            f"{run.switches / run.events:>15.0f}"
        )
    print(
        f"scaling {args.workers} workers / 1 worker: {runs[1].rate / runs[0].rate:.2f}x "
        f"(load average after: {os.getloadavg()[0]:.2f})"
    )


if __name__ == "__main__":
    main()
