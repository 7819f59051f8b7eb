"""Aggregates for the API, dashboard and /metrics: counts, throughput, latency, backlog.

Everything is computed from the store at read time, so the numbers are the same whichever
process (ingress, any worker) asks: no per-process counter can drift or get lost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, case, cast, distinct, func, literal_column, select, union_all

from hub.store.store import Store
from hub.store.tables import attempts, deliveries, events, group_events, metadata, rule_firings

#: End-to-end latency buckets (seconds): webhook received → delivery confirmed.
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True, slots=True)
class MinuteBucket:
    start: float
    received: int
    delivered: int
    failed: int
    retried: int


@dataclass(frozen=True, slots=True)
class Latency:
    count: int
    p50_s: float | None
    p99_s: float | None


@dataclass(frozen=True, slots=True)
class Histogram:
    """Cumulative counts per upper bound (the last is +Inf), with count and sum."""

    buckets: list[tuple[float, int]]
    count: int
    sum_s: float


@dataclass(frozen=True, slots=True)
class RuleCounts:
    matched_events: int
    deliveries: int
    delivered: int
    dead: int
    last_matched_at: float | None


def count_by(store: Store, table: str, *columns: str) -> dict[tuple[str, ...], int]:
    """Row counts of `table` ("events", "deliveries", ...) grouped by the named columns."""
    cols = [metadata.tables[table].c[name] for name in columns]
    query = select(*cols, func.count()).group_by(*cols)
    with store.guard("count rows"), store.engine.connect() as conn:
        return {tuple(str(v) for v in row[:-1]): int(row[-1]) for row in conn.execute(query)}


def attempts_by_outcome(store: Store) -> dict[tuple[str, str], int]:
    """(connector, outcome) → attempts recorded."""
    query = (
        select(deliveries.c.connector, attempts.c.outcome, func.count())
        .select_from(attempts.join(deliveries, deliveries.c.id == attempts.c.delivery_id))
        .group_by(deliveries.c.connector, attempts.c.outcome)
    )
    with store.guard("count attempts"), store.engine.connect() as conn:
        return {(str(c), str(o)): int(n) for c, o, n in conn.execute(query)}


def backlog(store: Store, *, now: float) -> dict[str, int]:
    """Work waiting per queue: `events` (received, not yet processed) and
    `deliver.<connector>` (pending or sending); the store is the queue's truth."""
    out = {"events": 0}
    with store.guard("measure the backlog"), store.engine.connect() as conn:
        out["events"] = int(
            conn.scalar(select(func.count()).where(events.c.status.in_(("received", "processing"))))
            or 0
        )
        query = (
            select(deliveries.c.connector, func.count())
            .where(deliveries.c.status.in_(("pending", "sending")))
            .group_by(deliveries.c.connector)
        )
        for connector, n in conn.execute(query):
            out[f"deliver.{connector}"] = int(n)
    return out


def throughput(
    store: Store, *, since: float, until: float, bucket_s: int = 60
) -> list[MinuteBucket]:
    """Per-bucket received, delivered, dead and retried counts from `since` to `until`."""
    series: dict[str, dict[int, int]] = {}
    sources = {
        "received": (events.c.received_at, events.c.received_at >= since),
        "delivered": (
            deliveries.c.updated_at,
            (deliveries.c.status == "delivered") & (deliveries.c.updated_at >= since),
        ),
        "failed": (
            deliveries.c.updated_at,
            (deliveries.c.status == "dead") & (deliveries.c.updated_at >= since),
        ),
        "retried": (
            attempts.c.started_at,
            attempts.c.outcome.in_(("retry", "error")) & (attempts.c.started_at >= since),
        ),
    }
    with store.guard("count throughput"), store.engine.connect() as conn:
        for name, (column, cond) in sources.items():
            slot = _bucket(store, column, bucket_s)
            query = select(slot, func.count()).where(cond).group_by(slot)
            series[name] = {int(b): int(n) for b, n in conn.execute(query)}
    first = int(since // bucket_s)
    last = int(until // bucket_s)
    return [
        MinuteBucket(
            float(b * bucket_s),
            series["received"].get(b, 0),
            series["delivered"].get(b, 0),
            series["failed"].get(b, 0),
            series["retried"].get(b, 0),
        )
        for b in range(first, last + 1)
    ]


def latency(store: Store, *, since: float, sample: int = 10_000) -> Latency:
    """p50/p99 end-to-end latency of the most recent deliveries confirmed since `since`."""
    query = (
        select(deliveries.c.updated_at - events.c.received_at)
        .select_from(deliveries.join(events, events.c.id == deliveries.c.inbound_id))
        .where(deliveries.c.status == "delivered", deliveries.c.updated_at >= since)
        .order_by(deliveries.c.updated_at.desc())
        .limit(sample)
    )
    with store.guard("measure latency"), store.engine.connect() as conn:
        values = sorted(max(0.0, float(v)) for v in conn.scalars(query))
    return Latency(len(values), percentile(values, 0.5), percentile(values, 0.99))


def latency_histogram(store: Store, bounds: Sequence[float] = LATENCY_BUCKETS_S) -> Histogram:
    """End-to-end latency of every delivered delivery, bucketed in one SQL pass."""
    value = deliveries.c.updated_at - events.c.received_at
    sums = [func.sum(case((value <= b, 1), else_=0)) for b in bounds]
    query = (
        select(func.count(), func.coalesce(func.sum(value), 0.0), *sums)
        .select_from(deliveries.join(events, events.c.id == deliveries.c.inbound_id))
        .where(deliveries.c.status == "delivered")
    )
    with store.guard("measure latency"), store.engine.connect() as conn:
        row = conn.execute(query).one()
    count = int(row[0] or 0)
    buckets = [(b, int(n or 0)) for b, n in zip(bounds, row[2:], strict=True)]
    return Histogram([*buckets, (math.inf, count)], count, float(row[1] or 0.0))


def rule_counts(store: Store) -> dict[str, RuleCounts]:
    """Per rule: distinct events matched (planned, windowed or grouped), deliveries by fate."""
    pairs = union_all(
        select(deliveries.c.rule_id.label("rule_id"), deliveries.c.event_id.label("event_id")),
        select(rule_firings.c.rule_id, rule_firings.c.event_id),
        select(group_events.c.rule_id, group_events.c.event_id),
    ).subquery()
    matched = select(pairs.c.rule_id, func.count(distinct(pairs.c.event_id))).group_by(
        pairs.c.rule_id
    )
    fates = select(
        deliveries.c.rule_id,
        func.count(),
        func.sum(cast(deliveries.c.status == "delivered", Integer)),
        func.sum(cast(deliveries.c.status == "dead", Integer)),
        func.max(deliveries.c.created_at),
    ).group_by(deliveries.c.rule_id)
    with store.guard("count rule matches"), store.engine.connect() as conn:
        counts = {str(r): int(n) for r, n in conn.execute(matched)}
        by_rule = {str(row[0]): row[1:] for row in conn.execute(fates)}
    out = {}
    for rule_id in counts.keys() | by_rule.keys():
        total, ok, dead, last = by_rule.get(rule_id, (0, 0, 0, None))
        out[rule_id] = RuleCounts(
            counts.get(rule_id, 0), int(total or 0), int(ok or 0), int(dead or 0), last
        )
    return out


def last_event_per_source(store: Store) -> dict[str, tuple[str, float, str]]:
    """source → (event id, received at, status) of its newest event."""
    newest = (
        select(events.c.source, func.max(events.c.received_at).label("at"))
        .group_by(events.c.source)
        .subquery()
    )
    query = select(events.c.source, events.c.id, events.c.received_at, events.c.status).join(
        newest, (newest.c.source == events.c.source) & (newest.c.at == events.c.received_at)
    )
    with store.guard("read the last events"), store.engine.connect() as conn:
        return {str(s): (str(i), float(at), str(st)) for s, i, at, st in conn.execute(query)}


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None when there are none."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return float(sorted_values[rank - 1])


def _bucket(store: Store, column: Any, bucket_s: int) -> Any:
    """floor(column / bucket_s), portably: SQLite truncates (times are positive)."""
    if store.engine.dialect.name == "postgresql":
        return cast(func.floor(column / bucket_s), Integer)
    return cast(column / literal_column(str(bucket_s)), Integer)
