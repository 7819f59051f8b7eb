"""A small load generator for signed GitHub webhooks, run as its own process.

Open loop (`--rate R`): request i is scheduled at start + i/R whatever the answers do, and
its latency counts from that scheduled time, so a slow server cannot hide its queueing
(no coordinated omission); at most `--concurrency` requests are in flight, and how far the
generator fell behind its schedule is reported as `max_lag_s`.
Closed loop (`--rate 0`): `--concurrency` connections send back to back.
Every request carries a unique X-GitHub-Delivery; in-flight requests are drained at the
end, so the report accounts for every request sent. aiohttp is used because it is a
dependency of the hub already and costs less CPU per request than httpx.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from pathlib import Path

import aiohttp
from harness import SECRET, IssueBodies, accepted_event_id, issue_fixtures, issue_headers, sign


class Bodies:
    def __init__(self, kind: str, start_number: int) -> None:
        self.kind = kind
        self.start = start_number
        if kind == "fixtures":
            self.fixed = [(body, sign(body)) for _, body in issue_fixtures()]
        else:
            self.issues = IssueBodies()

    def get(self, n: int) -> tuple[bytes, str]:
        if self.kind == "fixtures":
            return self.fixed[n % len(self.fixed)]
        body = self.issues.body(self.start + n)
        return body, sign(body, SECRET)


async def run(args: argparse.Namespace) -> dict[str, object]:
    bodies = Bodies(args.payloads, args.start_number)
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    records: list[tuple[str, str, float, float, float, int]] = []
    max_lag = 0.0
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=args.concurrency, force_close=False)

    async def one(session: aiohttp.ClientSession, n: int, scheduled: float) -> None:
        body, signature = bodies.get(n)
        delivery = f"{args.prefix}-{n}"
        headers = issue_headers(body, delivery, signature)
        sent = time.monotonic()
        try:
            async with session.post(args.url, data=body, headers=headers) as response:
                payload = await response.read()
                done = time.monotonic()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            errors[type(exc).__name__] += 1
            return
        event_id = accepted_event_id(status, payload)
        statuses[str(status)] += 1
        records.append((delivery, event_id, scheduled, sent, done, status))

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.monotonic()
        deadline = started + args.duration
        if args.rate > 0:
            slots = asyncio.Semaphore(args.concurrency)
            tasks: set[asyncio.Task[None]] = set()
            total = int(args.rate * args.duration)

            async def guarded(n: int, scheduled: float) -> None:
                try:
                    await one(session, n, scheduled)
                finally:
                    slots.release()

            for n in range(total):
                scheduled = started + n / args.rate
                delay = scheduled - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await slots.acquire()
                max_lag = max(max_lag, time.monotonic() - scheduled)
                task = asyncio.create_task(guarded(n, scheduled))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks)
        else:
            counter = iter(range(10**9))

            async def loop() -> None:
                while time.monotonic() < deadline:
                    n = next(counter)
                    await one(session, n, time.monotonic())

            await asyncio.gather(*(loop() for _ in range(args.concurrency)))
        elapsed = time.monotonic() - started
    return {
        "elapsed_s": elapsed,
        "statuses": dict(statuses),
        "errors": dict(errors),
        "max_lag_s": max_lag,
        "records": records,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s; 0 = closed loop")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--payloads", choices=["fixtures", "unique-issues"], default="fixtures")
    parser.add_argument("--prefix", required=True, help="X-GitHub-Delivery prefix")
    parser.add_argument("--start-number", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    report = asyncio.run(run(args))
    args.out.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
