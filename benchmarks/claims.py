"""Cost of claiming one delivery against the size of the store, in one run.

Every send starts with `Store.claim_delivery`, a conditional UPDATE inside a write
transaction: on SQLite it holds the one write lock that ingress and every worker share,
so its cost must not grow with history. Goal: claiming with 100,000 delivered rows and
5,000 unprocessed events behind costs at most 2x claiming in an empty store (the checks
that guard per-entity order are index lookups, not scans).

Rows are written with SQLAlchemy Core straight into the hub's tables (distinct entities,
one connector and destination, like a busy Discord channel); the claim itself is the
public `Store.claim_delivery`, so whatever query it uses is what is measured. Each claim
is rolled back to `pending` and repeated; the best of --rounds is kept (the least
disturbed, as in benchmarks/rules.py).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, update

from hub.store import open_store
from hub.store.store import Store
from hub.store.tables import deliveries, events

BODY = b'{"action": "opened"}' * 400  # ~8 KB, like a GitHub issues payload


def delivery_row(n: int, status: str, now: float) -> dict[str, object]:
    return {
        "id": f"d{n}",
        "inbound_id": f"e{n}",
        "event_id": f"e{n}",
        "rule_id": "bench",
        "action_index": 0,
        "connector": "discord",
        "operation": None,
        "destination": "fast",
        "params": {},
        "idempotency_key": f"k{n}",
        "entity_key": f"github/o/r|issue|{n}",
        "seq": now - 100 + n * 1e-6,
        "status": status,
        "attempts": 1 if status == "delivered" else 0,
        "next_attempt_at": now - 100,
        "created_at": now - 100,
        "updated_at": now - 100,
    }


def grow(store: Store, *, delivered: int, unprocessed: int, have: tuple[int, int]) -> None:
    now = time.time()  # noqa: TID251 - rows carry wall-clock seconds, as the hub writes them
    with store.engine.begin() as conn:
        rows = [delivery_row(n, "delivered", now) for n in range(have[0], delivered)]
        for start in range(0, len(rows), 5000):
            conn.execute(insert(deliveries), rows[start : start + 5000])
        later = [
            {
                "id": f"u{n}",
                "source": "github",
                "provider_delivery_id": f"u{n}",
                "status": "received",
                "received_at": now + 1 + n * 1e-6,  # received after the claimed one's event
                "headers": {},
                "body": BODY,
                "attempts": 0,
            }
            for n in range(have[1], unprocessed)
        ]
        for start in range(0, len(later), 2000):
            conn.execute(insert(events), later[start : start + 2000])


def measure(store: Store, claims: int, rounds: int) -> float:
    """Best-of-rounds microseconds per claim of one due, unblocked pending delivery (the
    reset to `pending` between claims is not counted)."""
    best = float("inf")
    for _ in range(rounds):
        spent = 0.0
        for _ in range(claims):
            now = time.time()  # noqa: TID251 - compared with the rows' wall-clock times
            started = time.perf_counter()
            row = store.claim_delivery("target", now=now, lease_s=60)
            spent += time.perf_counter() - started
            assert row is not None, "the target delivery was not claimable"
            with store.engine.begin() as conn:
                conn.execute(
                    update(deliveries)
                    .where(deliveries.c.id == "target")
                    .values(status="pending", attempts=0, lease_until=None)
                )
        best = min(best, spent / claims * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller store, fewer claims")
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [(0, 0), (1_000, 0), (20_000, 0), (100_000, 0), (100_000, 1_000), (100_000, 5_000)]
    if args.quick:
        sizes = [(0, 0), (20_000, 0), (20_000, 1_000)]
        args.claims, args.rounds = 100, 2
    with tempfile.TemporaryDirectory(prefix="sb-claims-") as tmp:
        store = open_store(f"sqlite:///{Path(tmp) / 'hub.db'}")
        now = time.time()  # noqa: TID251 - rows carry wall-clock seconds
        with store.engine.begin() as conn:
            target = delivery_row(10**9, "pending", now) | {"id": "target", "seq": now}
            conn.execute(insert(deliveries), [target])
        have = (0, 0)
        results = {}
        for delivered, unprocessed in sizes:
            grow(store, delivered=delivered, unprocessed=unprocessed, have=have)
            have = (delivered, unprocessed)
            cost = measure(store, args.claims, args.rounds)
            results[(delivered, unprocessed)] = cost
            print(
                f"{delivered:>7,} delivered rows, {unprocessed:>5,} unprocessed events: "
                f"{cost:>9,.0f} us per claim"
            )
        store.close()
    first, last = results[sizes[0]], results[sizes[-1]]
    print(
        f"cost ratio {sizes[-1][0]:,} rows + {sizes[-1][1]:,} unprocessed / empty store: "
        f"{last / first:.1f}x (goal <= 2x)"
    )


if __name__ == "__main__":
    main()
