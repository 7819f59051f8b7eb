"""The delivery policy and one send: what happens after a connector answers.

`decide` is a pure function of (result, attempt, age, policy, rng), tested as a table.
`deliver_once` claims a delivery row, calls the connector, records the attempt and
says whether (and when) to try again; it never sleeps.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from connectors.base import Connector, DeliveryContext, RenderedAction, SendResult, retry
from hub.clock import Clock
from hub.config import Settings
from hub.store import AttemptRecord, Store

DETAIL_LIMIT = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    max_attempts: int = 8
    base_delay_s: float = 1.0
    max_delay_s: float = 600.0
    max_age_s: float = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class Decision:
    action: Literal["delivered", "retry", "dead"]
    delay_s: float = 0.0
    reason: str = ""


def decide(
    result: SendResult, *, attempt: int, age_s: float, policy: RetryPolicy, rng: random.Random
) -> Decision:
    """ok → delivered; fail → dead; retry → the provider's wait, else full-jitter backoff."""
    if result.outcome == "ok":
        return Decision("delivered")
    if result.outcome == "fail":
        return Decision("dead", reason=result.reason)
    if attempt >= policy.max_attempts:
        return Decision("dead", reason=f"gave up after {attempt} attempts: {result.reason}")
    if result.after is not None:
        delay = result.after  # the provider said when; honour it exactly, no jitter
    else:
        delay = rng.uniform(0, min(policy.max_delay_s, policy.base_delay_s * 2 ** (attempt - 1)))
    if age_s + delay > policy.max_age_s:
        return Decision("dead", reason=f"too old to retry ({age_s:.0f}s): {result.reason}")
    return Decision("retry", delay_s=delay, reason=result.reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryOutcome:
    delivery_id: str
    connector: str
    decision: Decision | None  # None: nothing was sent (done, or leased elsewhere)
    #: Set when the message came early: seconds until the delivery is due.
    not_due_for_s: float | None = None


async def deliver_once(
    delivery_id: str,
    *,
    store: Store,
    settings: Settings,
    connectors: Mapping[str, Connector],
    clock: Clock,
    policy: RetryPolicy,
    rng: random.Random,
    lease_s: float,
) -> DeliveryOutcome:
    """Send one delivery if it is due and unclaimed, and record what happened."""
    now = clock.now().timestamp()
    row = await asyncio.to_thread(store.claim_delivery, delivery_id, now=now, lease_s=lease_s)
    if row is None:
        # A delayed message can arrive a few ms before next_attempt_at (clock skew between
        # the broker's eta and ours); dropping it would stall the delivery until the sweeper.
        due_in = await asyncio.to_thread(store.delivery_due_in, delivery_id, now=now)
        return DeliveryOutcome(
            delivery_id=delivery_id, connector="", decision=None, not_due_for_s=due_in
        )
    connector = connectors.get(row.connector)
    destination = settings.destinations.get(row.destination) if row.destination else None
    action = RenderedAction(
        connector=row.connector,
        operation=row.operation,
        destination=row.destination,
        params=row.params,
    )
    refs: dict[str, str] = {}
    if row.entity_key is not None:
        refs = await asyncio.to_thread(
            store.entity_refs,
            connector=row.connector,
            destination=row.destination,
            entity_key=row.entity_key,
        )
    ctx = DeliveryContext(
        delivery_id=row.id,
        event_id=row.event_id,
        rule_id=row.rule_id,
        idempotency_key=row.idempotency_key,
        attempt=row.attempts,
        destination=destination,
        now=clock.now(),
        previous_ref=row.ref,
        entity_key=row.entity_key,
        entity_refs=refs,
    )
    started = clock.monotonic()
    if connector is None:
        result = retry(None, f"connector '{row.connector}' is not installed in this worker")
    else:
        try:
            result = await connector.send(action, ctx)
        except Exception as exc:  # a connector bug must not lose the delivery
            result = retry(None, f"connector {row.connector} raised {type(exc).__name__}: {exc}")
    duration_ms = (clock.monotonic() - started) * 1000
    decision = decide(
        result, attempt=row.attempts, age_s=now - row.created_at, policy=policy, rng=rng
    )
    finished = clock.now().timestamp()
    record = AttemptRecord(
        number=row.attempts,
        started_at=now,
        duration_ms=duration_ms,
        outcome=result.outcome,
        status_code=result.status_code,
        detail=(result.reason or result.ref or "")[:DETAIL_LIMIT],
    )
    if decision.action == "delivered":
        await asyncio.to_thread(
            store.finish_attempt, row.id, record, status="delivered", now=finished, ref=result.ref
        )
    elif decision.action == "retry":
        await asyncio.to_thread(
            store.finish_attempt,
            row.id,
            record,
            status="pending",
            now=finished,
            next_attempt_at=finished + decision.delay_s,
            last_error=result.reason[:DETAIL_LIMIT],
        )
    else:
        await asyncio.to_thread(
            store.finish_attempt,
            row.id,
            record,
            status="dead",
            now=finished,
            last_error=decision.reason[:DETAIL_LIMIT],
        )
    return DeliveryOutcome(delivery_id=row.id, connector=row.connector, decision=decision)
