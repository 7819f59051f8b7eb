"""The delivery engine: one send of one delivery, and the policy for what comes next.

`decide` is a pure function of (result, attempt, age, policy, rng), tested as a table.
`DeliveryEngine.deliver` claims a delivery row, waits for nothing (an open breaker or a
spent rate limit hands the row back with a time to come back), calls the connector,
records the attempt and says whether and when to try again. It never sleeps, except
the last `WAKE_EARLY_S` before a due time, so that a provider's wait is kept exactly.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from connectors.base import Connector, DeliveryContext, RenderedAction, SendResult, fail, retry
from hub.clock import Clock
from hub.config import DeliveryPolicy, Settings
from hub.logging import Masker, bind, mask_text
from hub.pipeline.ratelimit import Breaker, BreakerPolicy, Limit, Limiter
from hub.pipeline.rerender import is_unrendered
from hub.pipeline.writer import StoreWriter
from hub.store import AttemptRecord, DeliveryRow, Store, batches

DETAIL_LIMIT = 500
#: Delayed broker messages wake up to ~0.2 s late (Dramatiq polls its delay queue), so
#: they are scheduled this much early and the engine waits out the rest in-process: a
#: `Retry-After` is then kept to within a few milliseconds, never early.
WAKE_EARLY_S = 0.25
#: Added to every rate-limit window. The destination counts arrivals, we count slot
#: grants; scheduling and network jitter between the two (measured up to ~90 ms on a
#: busy 2-core machine) would otherwise let one request in a burst land inside the
#: window and earn a 429. Costs 5% of Discord's 5-per-2-s rate.
JITTER_ALLOWANCE_S = 0.1
#: Rows of a batch due within this many seconds of each other are claimed again together
#: (a row is never tried early: the wait is rounded up).
SAME_DUE_S = 0.01
#: Renders a delivery planned without params again: its params, or why not (hub/rerender).
Rerender = Callable[[DeliveryRow], Awaitable[dict[str, Any] | str]]


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
    #: None: nothing was sent (done, leased elsewhere, deferred or not yet due).
    decision: Decision | None
    #: Set when the delivery must be looked at again later: seconds from now.
    come_back_in_s: float | None = None
    #: A delivery for the same entity that was waiting for this one to finish.
    next_in_line: str | None = None


def _budget_key(connector: Connector | None, ctx: DeliveryContext, default: str) -> str:
    """The rate-limit budget a send draws on: per destination, unless the connector says
    several share one (a Notion integration token is one budget for reads and writes)."""
    key = connector.budget_key(ctx.destination) if connector is not None else None
    return key if isinstance(key, str) and key else default


def destination_key(connector: str, destination: str | None) -> str:
    return f"{connector}:{destination or '-'}"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryBatch:
    """What one batch of deliveries came to, and which messages it asks for."""

    outcomes: list[DeliveryOutcome]
    #: (delivery id, connector) waiting behind a delivery of this batch that is done now.
    wake: list[tuple[str, str]]

    def come_backs(self) -> list[tuple[str, str, float]]:
        """(delivery id, connector, seconds) of the deliveries to look at again later."""
        return [
            (o.delivery_id, o.connector, o.come_back_in_s)
            for o in self.outcomes
            if o.come_back_in_s is not None
        ]


class DeliveryEngine:
    """Everything a send needs, built once per worker process.

    A batch is claimed in one statement; its sends run as tasks on the caller's event
    loop (bounded per destination by its `concurrency`), and each outcome is recorded as
    soon as its send finishes, through the process's one writer, which commits outcomes
    that finish together in one transaction. A slow destination therefore holds only its
    own rows (their leases stay), never the record of the rest of the batch.
    """

    def __init__(
        self,
        *,
        store: Store,
        settings: Settings,
        connectors: Mapping[str, Connector],
        clock: Clock,
        rng: random.Random,
        limiter: Limiter,
        breaker: Breaker,
        secrets: frozenset[str] = frozenset(),
        rerender: Rerender | None = None,
        writer: StoreWriter | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.connectors = connectors
        self.clock = clock
        self.rng = rng
        self.limiter = limiter
        self.breaker = breaker
        self.secrets = secrets
        self._masker = Masker(secrets)
        self.rerender = rerender
        self.writer = writer or StoreWriter(store)
        self.lease_s = settings.worker.lease_seconds
        self._slots: dict[str, asyncio.Semaphore] = {}

    def policy(self, row: DeliveryRow) -> DeliveryPolicy:
        connector = self.connectors.get(row.connector)
        defaults = connector.rate_limits if connector is not None else ()
        return self.settings.policy_for(row.destination, defaults)

    async def deliver(self, delivery_id: str) -> DeliveryOutcome:
        """Send one delivery if it is due, unclaimed and first in line for its entity."""
        batch = await self.deliver_batch([delivery_id])
        outcome = batch.outcomes[0]
        if batch.wake:
            return replace(outcome, next_in_line=batch.wake[0][0])
        return outcome

    async def deliver_batch(
        self, delivery_ids: Sequence[str], *, wait_if_due_soon: bool = True
    ) -> DeliveryBatch:
        """Claim the batch in one statement, send what was claimed, record every outcome.

        A row due within WAKE_EARLY_S is waited for here and claimed once more (a second
        miss comes back through the broker), so a provider's wait is kept exactly.
        """
        ids = list(dict.fromkeys(delivery_ids))
        now = self.clock.now().timestamp()
        rows: list[DeliveryRow] = await self.writer.run(
            lambda conn: batches.claim_deliveries(conn, ids, now=now, lease_s=self.lease_s),
            "claim deliveries",
        )
        if self.store.cipher.is_enabled:  # sealed follow-up credentials (hub/store/crypto.py)
            rows = [replace(r, params=self.store.cipher.open_all(r.params)) for r in rows]
        claimed = {row.id for row in rows}
        waiting = [i for i in ids if i not in claimed]
        outcomes: list[DeliveryOutcome] = []
        soon: list[tuple[str, float]] = []
        if waiting:
            hints: dict[str, tuple[str, float]] = await self.writer.read(
                lambda conn: batches.claim_hints(conn, waiting, now=now),
                "read why deliveries wait",
            )
            for delivery_id in waiting:
                kind, seconds = hints.get(delivery_id, ("", None))
                # Blocked rows are woken by their predecessor; the others wait their time.
                # A delayed message can wake a few ms before next_attempt_at (the broker's
                # clock is not ours): the last WAKE_EARLY_S are waited out here, exactly.
                if (
                    wait_if_due_soon
                    and seconds is not None
                    and kind != "blocked"
                    and seconds <= WAKE_EARLY_S
                ):
                    soon.append((delivery_id, seconds))
                    continue
                outcomes.append(
                    DeliveryOutcome(
                        delivery_id=delivery_id,
                        connector="",
                        decision=None,
                        come_back_in_s=seconds,
                    )
                )
        refs: dict[str, dict[str, str]] = {}
        if any(row.entity_key is not None for row in rows):
            refs = await self.writer.read(
                lambda conn: batches.entity_refs(conn, rows), "read entity refs"
            )
        sends = [self._guarded(row, refs.get(row.id, {}), now) for row in rows]
        # Rows due at (nearly) the same moment are claimed again together, as one batch.
        due_together: dict[int, list[str]] = {}
        for delivery_id, wait in soon:
            due_together.setdefault(math.ceil(wait / SAME_DUE_S), []).append(delivery_id)
        later = [self._after(ids, step * SAME_DUE_S) for step, ids in sorted(due_together.items())]
        sent = await asyncio.gather(*sends)
        waited = await asyncio.gather(*later)
        outcomes.extend(sent)
        done = [row for row, o in zip(rows, sent, strict=True) if _is_final(o)]
        wake: list[tuple[str, str]] = []
        if done:
            wake = await self.writer.read(
                lambda conn: batches.next_in_line(conn, done), "find the next deliveries"
            )
        for batch in waited:
            outcomes.extend(batch.outcomes)
            wake.extend(batch.wake)
        by_id = {o.delivery_id: o for o in outcomes}
        return DeliveryBatch(outcomes=[by_id[i] for i in ids if i in by_id], wake=wake)

    async def _after(self, delivery_ids: list[str], wait_s: float) -> DeliveryBatch:
        await self.clock.sleep(wait_s)
        return await self.deliver_batch(delivery_ids, wait_if_due_soon=False)

    async def _guarded(self, row: DeliveryRow, refs: dict[str, str], now: float) -> DeliveryOutcome:
        """One claimed row's send; whatever goes wrong, the row is recorded or deferred."""
        bind(delivery_id=row.id)  # this task's records carry the id
        key = destination_key(row.connector, row.destination)
        policy = self.policy(row)
        breaker = BreakerPolicy(
            threshold=policy.breaker_threshold, cooldown_s=policy.breaker_cooldown_s
        )
        slot = self._slots.setdefault(key, asyncio.Semaphore(policy.concurrency))
        async with slot:
            attempted = await self._send(row, refs, key, policy, breaker, now)
        # Recorded after the slot is given back: the slot bounds requests in flight to the
        # destination, and a send that waited for the store's commit in it held the slot
        # for the commit too (at 1,000/s, ~66 ms per send against a local fake).
        await self.writer.submit(attempted.write, attempted.doing)
        return attempted.outcome

    async def _send(
        self,
        row: DeliveryRow,
        refs: dict[str, str],
        key: str,
        policy: DeliveryPolicy,
        breaker: BreakerPolicy,
        now: float,
    ) -> _Attempted:
        """Send one claimed row; its outcome and the store write that records it."""
        connector = self.connectors.get(row.connector)
        # Breaker and limiter calls are short (in memory, or one Redis round trip) and run
        # on the loop: a thread hop each cost more than the call (docs/benchmarks.md).
        breaker_wait = self.breaker.check(key, breaker) if not is_unrendered(row.params) else 0.0
        params, unusable = await self._params(row, now)
        action = RenderedAction(
            connector=row.connector,
            operation=row.operation,
            destination=row.destination,
            params=params,
        )
        ctx = DeliveryContext(
            delivery_id=row.id,
            event_id=row.event_id,
            rule_id=row.rule_id,
            idempotency_key=row.idempotency_key,
            attempt=row.attempts,
            destination=self.settings.destinations.get(row.destination)
            if row.destination
            else None,
            now=self.clock.now(),
            previous_ref=row.ref,
            entity_key=row.entity_key,
            entity_refs=refs,
        )
        # The gate is the last step before the request, so the time between taking a
        # rate-limit slot and the destination seeing the request stays as short as it can:
        # any gap there is jitter the destination counts against us.
        budget = _budget_key(connector, ctx, key)
        wait = 0.0 if unusable else breaker_wait
        if wait <= 0 and policy.limits and not unusable:
            limits = [Limit(count, per + JITTER_ALLOWANCE_S) for count, per in policy.limits]
            wait = self.limiter.acquire(budget, limits)
        if wait > 0:  # hand the row back without an attempt; come back when allowed
            deferred = [(row.id, now + wait)]
            return _Attempted(
                DeliveryOutcome(
                    delivery_id=row.id, connector=row.connector, decision=None, come_back_in_s=wait
                ),
                lambda conn: batches.defer_deliveries(conn, deferred, now=now),
                "defer a delivery",
            )
        started = self.clock.monotonic()
        if unusable is not None:
            result = unusable
        elif connector is None:
            result = retry(None, f"connector '{row.connector}' is not installed in this worker")
        else:
            try:
                result = await connector.send(action, ctx)
            except Exception as exc:  # a connector bug must not lose the delivery
                result = retry(
                    None, f"connector {row.connector} raised {type(exc).__name__}: {exc}"
                )
        duration_ms = (self.clock.monotonic() - started) * 1000
        retry_policy = RetryPolicy(max_attempts=policy.max_attempts, max_age_s=policy.max_age_s)
        # A replay starts a fresh budget: attempts and age count from it (history stays).
        decision = decide(
            result,
            attempt=row.attempts - row.retry_base_attempts,
            age_s=now - (row.retry_since if row.retry_since is not None else row.created_at),
            policy=retry_policy,
            rng=self.rng,
        )
        if result.pause_s:
            self.limiter.pause(budget, result.pause_s)
        if result.outcome == "retry" and result.after:
            self.limiter.pause(budget, result.after)
        # A 4xx `fail` means the destination answered, and a 429 means it is up and pacing
        # us (the limiter handles that): only errors and silence trip the breaker.
        healthy = result.outcome != "retry" or result.status_code == 429
        self.breaker.record(key, breaker, success=healthy)
        recorded = self._record(row, result, decision, now, duration_ms)
        return _Attempted(
            DeliveryOutcome(
                delivery_id=row.id,
                connector=row.connector,
                decision=decision,
                come_back_in_s=decision.delay_s if decision.action == "retry" else None,
            ),
            lambda conn: batches.record_attempts(conn, [recorded]),
            "record a delivery attempt",
        )

    async def _params(
        self, row: DeliveryRow, now: float
    ) -> tuple[dict[str, Any], SendResult | None]:
        """The params to send; a delivery planned without any is rendered again (a replay
        after its template or query was fixed), else it fails with why, nothing sent."""
        if not is_unrendered(row.params):
            return row.params, None
        if self.rerender is None:
            return row.params, fail("this delivery was never rendered and cannot be here")
        fresh = await self.rerender(row)
        if isinstance(fresh, str):
            return row.params, fail(f"rendering it again failed: {fresh}")
        await self.writer.submit(
            lambda conn: batches.set_params(conn, row.id, fresh, now=now),
            "store re-rendered params",
        )
        return fresh, None

    def _scrubbed(self, row: DeliveryRow) -> dict[str, Any] | None:
        """The params of a delivery that is done with credentials masked, or None if it
        holds none: a chat command's follow-up URL lets anyone post into the conversation
        until it expires, and the row outlives its use. A delivered row is not sent again
        but by a forced replay, which then fails with why (the follow-up has expired by
        then anyway)."""
        scrubbed = self._masker(row.params)
        return scrubbed if scrubbed != row.params else None

    def _record(
        self,
        row: DeliveryRow,
        result: SendResult,
        decision: Decision,
        now: float,
        duration_ms: float,
    ) -> batches.AttemptOutcome:
        """The attempt row and the delivery's next state, to record in one transaction."""
        finished = self.clock.now().timestamp()
        detail = mask_text(result.reason or result.ref or "", self.secrets)[:DETAIL_LIMIT]
        record = AttemptRecord(
            number=row.attempts,
            started_at=now,
            duration_ms=duration_ms,
            outcome=result.outcome,
            status_code=result.status_code,
            detail=detail,
        )
        if decision.action == "delivered":
            return batches.AttemptOutcome(
                delivery_id=row.id,
                attempt=record,
                status="delivered",
                now=finished,
                ref=result.ref,
                params=self._scrubbed(row),
            )
        if decision.action == "retry":
            return batches.AttemptOutcome(
                delivery_id=row.id,
                attempt=record,
                status="pending",
                now=finished,
                next_attempt_at=finished + decision.delay_s,
                last_error=detail,
            )
        reason = mask_text(decision.reason, self.secrets)[:DETAIL_LIMIT]
        return batches.AttemptOutcome(
            delivery_id=row.id, attempt=record, status="dead", now=finished, last_error=reason
        )


@dataclass(frozen=True, slots=True)
class _Attempted:
    """A send's outcome, and the write that records it (made once the slot is free)."""

    outcome: DeliveryOutcome
    write: Callable[[batches.Transaction], Any]
    doing: str


def _is_final(outcome: DeliveryOutcome) -> bool:
    """Sent and not to be retried: the next delivery for its entity may go."""
    return outcome.decision is not None and outcome.decision.action != "retry"
