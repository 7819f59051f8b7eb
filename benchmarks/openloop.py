"""A strictly open-loop generator of signed GitHub `issues.opened` webhooks, own process.

Why not `loadgen.py`: its open loop waits for a free slot before it schedules the next
request, so when the server falls behind, the *offered* rate falls with it and a long run
stretches past its duration. Here request i is due at start + i/R whatever happened to
the earlier ones. A due request waits for one of `--connections` keep-alive connections
(a provider's delivery fleet is finite too) for at most `--queue-timeout` s after its
scheduled time, else it is dropped unsent ("not-sent"); once sent, it gives up after
`--timeout` s without an answer ("timeout-after-send"; GitHub gives up after 10 s).
Latency always counts from the scheduled time, so queueing in the generator or the server
is never hidden (no coordinated omission), and the run ends at most queue-timeout +
timeout s after the last scheduled send. Each request is one distinct issue
(`--start-number` + i), with a unique X-GitHub-Delivery, so every accepted event is new
work for the hub.

The report (JSON, `--out`) lists every request: answered ones as
[delivery id, event id, scheduled, sent, done, status] and the others as
[delivery id, scheduled, reason, seconds from scheduled to giving up]; the driver looks
them up in the store, since a request the client gave up on may still have been stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import aiohttp
from harness import IssueBodies, accepted_event_id, issue_headers


async def run(args: argparse.Namespace) -> dict[str, object]:
    """Send the whole schedule, then wait for the last answers or their deadlines."""
    bodies = IssueBodies()
    records: list[tuple[str, str, float, float, float, int]] = []
    failed: list[tuple[str, float, str, float]] = []
    statuses: Counter[str] = Counter()
    slots = asyncio.Semaphore(args.connections)
    connector = aiohttp.TCPConnector(limit=args.connections)
    max_lag = 0.0

    async def one(session: aiohttp.ClientSession, n: int, scheduled: float) -> None:
        delivery = f"{args.prefix}-{n}"
        sent = 0.0
        try:
            async with asyncio.timeout(max(0.0, scheduled + args.queue_timeout - time.monotonic())):
                await slots.acquire()
        except TimeoutError:
            failed.append((delivery, scheduled, "not-sent", time.monotonic() - scheduled))
            return
        try:
            # Built only once a connection is free: a backlog of due requests costs no
            # memory for bodies.
            body = bodies.body(args.start_number + n)
            headers = issue_headers(body, delivery)
            sent = time.monotonic()
            async with asyncio.timeout(args.timeout):
                async with session.post(args.url, data=body, headers=headers) as response:
                    payload = await response.read()
                    status = response.status
            done = time.monotonic()
        except TimeoutError:
            failed.append((delivery, scheduled, "timeout-after-send", time.monotonic() - scheduled))
            return
        except aiohttp.ClientError as exc:
            failed.append((delivery, scheduled, type(exc).__name__, time.monotonic() - scheduled))
            return
        finally:
            slots.release()
        event_id = accepted_event_id(status, payload)
        statuses[str(status)] += 1
        records.append((delivery, event_id, scheduled, sent, done, status))

    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.monotonic()
        tasks: set[asyncio.Task[None]] = set()
        total = int(args.rate * args.duration)
        for n in range(total):
            scheduled = started + n / args.rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            max_lag = max(max_lag, time.monotonic() - scheduled)
            task = asyncio.create_task(one(session, n, scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        schedule_end = time.monotonic()
        if tasks:
            await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    return {
        "started": started,
        "schedule_s": schedule_end - started,
        "elapsed_s": elapsed,
        "scheduled": total,
        "statuses": dict(statuses),
        "failed": failed,
        "max_lag_s": max_lag,
        "records": records,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests/s")
    parser.add_argument("--duration", type=float, required=True, help="seconds of schedule")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=10.0, help="s after sending")
    parser.add_argument(
        "--queue-timeout", type=float, default=10.0, help="s a due request waits to be sent"
    )
    parser.add_argument("--prefix", required=True, help="X-GitHub-Delivery prefix")
    parser.add_argument("--start-number", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.write_text(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
