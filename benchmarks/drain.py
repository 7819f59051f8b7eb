"""Worker cost per event, in one run: how fast do workers drain a backlog, and what does
each event cost them?

The end-to-end goals (load.py, delivery.py) are bounded by worker throughput; this
measures it on its own. Ingress (`serve --no-worker`) accepts --events signed
`issues.opened` webhooks while no worker runs, so they wait in Redis as a backlog; then
workers start and drain it: each event is claimed, normalized, matched, rendered,
planned as one Discord delivery, claimed again, sent to the fast fake Discord
(benchmarks/fake_discord.py) and recorded. Ingress enqueues each webhook's id in a
message of its own (the posts come one at a time), so whatever batching happens is the
worker's own: its batch consumer takes every ready message, up to 64 ids a batch
(hub/pipeline/consumer.py).
The workers are started, then stopped with SIGSTOP while the backlog is posted, and
resumed together. Figures per phase: events/s from the first
worker's start to the last delivery row `delivered`, worker CPU ms per event (user +
system from /proc), and context switches per event (every thread of every worker).
Phases: 1 worker, then --workers workers on a fresh backlog; the ratio of their rates
is the scaling on this machine (2 cores: the workers share them with ingress idling,
the fake and Redis). All on 127.0.0.1; Redis keys under a unique `sbbench-*` prefix.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from delivery import LIMITED_BELOW, Fake, Stack
from harness import (
    DEFAULT_REDIS_URL,
    REPO,
    Proc,
    cpu_seconds,
    redis_available,
    use_tree,
    wait_for,
)
from load import read_profile, start_profile


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


def drain(
    tmp: Path,
    name: str,
    *,
    workers: int,
    events: int,
    threads: int,
    redis: str,
    profile: bool = False,
) -> Drain:
    fake = Fake(tmp)
    try:
        stack = Stack.start(
            tmp, name, fake, workers=0, threads=threads, lease_s=60, redis_url=redis
        )
    except BaseException:
        fake.close()  # the hub never came up: the fake must not outlive the run
        raise
    try:
        stack.ready()
        fake.reset()  # unlimited: a fast destination
        # The workers start first and are stopped (SIGSTOP) while the backlog is posted,
        # then all resume at once: none drains while another is still starting up, and
        # their start-up CPU is not counted.
        procs: list[Proc] = [stack.add_worker(wait=True) for _ in range(workers)]
        for proc in procs:
            os.kill(proc.pid, signal.SIGSTOP)
        try:
            ids = {stack.post(LIMITED_BELOW + n)[0] for n in range(events)}
        finally:
            cpu = {p.pid: cpu_seconds(p.pid) for p in procs}
            switches = {p.pid: context_switches(p.pid) for p in procs}
            started = time.monotonic()
            for proc in procs:
                os.kill(proc.pid, signal.SIGCONT)
        # py-spy samples the first worker (where its Python CPU goes) for an estimate of
        # the drain's length; it never pauses the target.
        spy = start_profile(name, procs[0].pid, events / 400, tmp, mode="gil") if profile else None
        done = wait_for(
            lambda: stack.delivery_statuses(ids).get("delivered", 0) >= events, 600, 0.25
        )
        seconds = time.monotonic() - started
        if not done:
            raise RuntimeError(f"not drained within 600 s: {stack.snapshot()}")
        if spy is not None:
            if spy[0].alive():  # py-spy writes what it has on SIGINT (as on Ctrl-C)
                spy[0].popen.send_signal(signal.SIGINT)
            spy[0].popen.wait(timeout=30)
            print_profile(name, spy[1])
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


#: Issue #18's goals for this benchmark.
GOAL_RATE_2 = 1500


def phases(
    tmp: Path,
    label: str,
    *,
    workers: int,
    events: int,
    threads: int,
    redis: str,
    profile: bool = False,
) -> list[Drain]:
    return [
        drain(
            tmp,
            f"drain-{label}{phase}-{w}",
            workers=w,
            events=events,
            threads=threads,
            redis=redis,
            profile=profile and w == 1,
        )
        for phase, w in enumerate((1, workers))
    ]


def print_profile(name: str, path: Path) -> None:
    """Where the worker's Python CPU went: each sample charged to its deepest hub frame."""
    found = read_profile(path, top=25)
    if path.is_file():  # kept for a closer look (py-spy's collapsed stacks)
        shutil.copy(path, Path(tempfile.gettempdir()) / f"{name}.profile.txt")
    if found is None:
        print(f"{name}: no py-spy samples (is py-spy installed in the venv?)")
        return
    print(f"{name}: py-spy, {found.samples} samples of the first worker (GIL holder)")
    for title, rows in (
        ("charged to", found.attributed),
        ("inclusive", found.inclusive),
        ("own (leaf)", found.own),
    ):
        print(f"  {title}:")
        for frame, share in rows:
            print(f"    {share:6.1%}  {frame}")


def report(label: str, runs: list[Drain], threads: int) -> None:
    print(f"{label} ({threads} threads/worker)")
    print(f"  {'workers':>7} {'events/s':>9} {'CPU ms/event':>13} {'switches/event':>15}")
    for run in runs:
        print(
            f"  {run.workers:>7} {run.rate:>9.0f} {run.cpu_ms:>13.2f} "
            f"{run.switches / run.events:>15.1f}"
        )
    print(f"  scaling {runs[1].workers} workers / 1 worker: {runs[1].rate / runs[0].rate:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=2, help="workers in the second phase")
    parser.add_argument("--threads", type=int, default=4, help="worker.threads (the default)")
    parser.add_argument("--quick", action="store_true", help="300 events")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the 1-worker phase of this checkout"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="another checkout (e.g. `git worktree add /tmp/before <commit>`) measured first, "
        "in the same run, for a before/after ratio",
    )
    parser.add_argument(
        "--tree", type=Path, help="measure this checkout instead of the one holding drain.py"
    )
    parser.add_argument(
        "--before-threads", type=int, default=4, help="worker.threads for --before (its default)"
    )
    args = parser.parse_args()
    if why := redis_available(args.redis_url):
        raise SystemExit(f"Redis at {args.redis_url} is down: {why}")
    events = 300 if args.quick else args.events
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    print(f"{events} issues.opened events, each one Discord delivery")
    with tempfile.TemporaryDirectory(prefix="sb-drain-") as tmp:
        before: list[Drain] = []
        if args.before is not None:
            use_tree(args.before)
            before = phases(
                Path(tmp),
                "before",
                workers=args.workers,
                events=events,
                threads=args.before_threads,
                redis=args.redis_url,
            )
            use_tree(REPO)
        if args.tree is not None:
            use_tree(args.tree)
        after = phases(
            Path(tmp),
            "after",
            workers=args.workers,
            events=events,
            threads=args.threads,
            redis=args.redis_url,
            profile=args.profile,
        )
    if before:
        report(f"before: {args.before}", before, args.before_threads)
    report(f"this checkout: {args.tree or REPO}", after, args.threads)
    one, two = after
    print("goals (issue #18):")
    print(f"  CPU ms per event, 1 / 2 workers  {one.cpu_ms:.2f} / {two.cpu_ms:.2f}  goal <= 0.6")
    print(f"  events/s with 2 workers          {two.rate:.0f}  goal >= {GOAL_RATE_2}")
    print(f"  switches per event, 2 workers    {two.switches / two.events:.1f}  goal <= 10")
    if before:
        b1, b2 = before
        print(
            f"after/before: events/s {one.rate / b1.rate:.2f}x (1 worker), "
            f"{two.rate / b2.rate:.2f}x (2); CPU per event {one.cpu_ms / b1.cpu_ms:.2f}x (1), "
            f"{two.cpu_ms / b2.cpu_ms:.2f}x (2)"
        )
    print(f"(load average after: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
