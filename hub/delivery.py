"""The delivery engine: one send of one delivery, and the policy for what comes next.

`decide` is a pure function of (result, attempt, age, policy, rng), tested as a table.
`DeliveryEngine.deliver` claims a delivery row, waits for nothing (an open breaker or a
spent rate limit hands the row back with a time to come back), calls the connector,
records the attempt and says whether and when to try again. It never sleeps, except
the last `WAKE_EARLY_S` before a due time, so that a provider's wait is kept exactly.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from connectors.base import Connector, DeliveryContext, RenderedAction, SendResult, fail, retry
from hub.clock import Clock
from hub.config import DeliveryPolicy, Settings
from hub.logging import Masker, bind, mask_text
from hub.ratelimit import Breaker, BreakerPolicy, Limit, Limiter
from hub.rerender import is_unrendered
from hub.store import AttemptRecord, DeliveryRow, Store
from hub.store.replay import set_params

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
    shared = getattr(connector, "budget_key", None)
    key = shared(ctx.destination) if shared is not None else None
    return key if isinstance(key, str) and key else default


def destination_key(connector: str, destination: str | None) -> str:
    return f"{connector}:{destination or '-'}"


class DeliveryEngine:
    """Everything one send needs, built once per worker process."""

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
        self.lease_s = settings.worker.lease_seconds
        self._slots: dict[str, asyncio.Semaphore] = {}

    def policy(self, row: DeliveryRow) -> DeliveryPolicy:
        connector = self.connectors.get(row.connector)
        defaults = tuple(getattr(connector, "rate_limits", ()))
        return self.settings.policy_for(row.destination, defaults)

    async def deliver(self, delivery_id: str) -> DeliveryOutcome:
        """Send one delivery if it is due, unclaimed and first in line for its entity."""
        bind(delivery_id=delivery_id)  # this task's records carry the id
        now, row = await self._claim(delivery_id)
        if row is None:
            outcome, due_in = await self._not_claimed(delivery_id, now)
            if due_in is None or due_in > WAKE_EARLY_S:
                return outcome
            await self.clock.sleep(due_in)
            now, row = await self._claim(delivery_id)
            if row is None:
                return (await self._not_claimed(delivery_id, now))[0]
        key = destination_key(row.connector, row.destination)
        policy = self.policy(row)
        breaker = BreakerPolicy(
            threshold=policy.breaker_threshold, cooldown_s=policy.breaker_cooldown_s
        )
        slot = self._slots.setdefault(key, asyncio.Semaphore(policy.concurrency))
        async with slot:
            return await self._send(row, key, policy, breaker, now)

    async def _claim(self, delivery_id: str) -> tuple[float, DeliveryRow | None]:
        now = self.clock.now().timestamp()
        row = await asyncio.to_thread(
            self.store.claim_delivery, delivery_id, now=now, lease_s=self.lease_s
        )
        return now, row

    async def _not_claimed(
        self, delivery_id: str, now: float
    ) -> tuple[DeliveryOutcome, float | None]:
        """What to do with a message whose row was not claimable, and when it is due."""
        # A delayed message can wake a few ms before next_attempt_at (the broker's clock
        # is not ours), and a delivery can wait behind an earlier one for its entity;
        # dropping either message would stall the delivery until the sweeper.
        hint = await asyncio.to_thread(self.store.claim_hint, delivery_id, now=now)
        come_back = None
        due_in = None
        if hint is not None:
            come_back = hint[1]
            # Blocked rows are woken by their predecessor; the others wait their time.
            due_in = hint[1] if hint[0] != "blocked" else None
        outcome = DeliveryOutcome(
            delivery_id=delivery_id, connector="", decision=None, come_back_in_s=come_back
        )
        return outcome, due_in

    async def _send(
        self,
        row: DeliveryRow,
        key: str,
        policy: DeliveryPolicy,
        breaker: BreakerPolicy,
        now: float,
    ) -> DeliveryOutcome:
        connector = self.connectors.get(row.connector)
        # Store and Redis reads before the request share one thread hop (each hop costs
        # context switches and a GIL hand-off; the worker spent more on those than on SQL).
        refs, breaker_wait = await asyncio.to_thread(
            self._before_send, row, key, breaker, check_breaker=not is_unrendered(row.params)
        )
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
            wait = await asyncio.to_thread(self.limiter.acquire, budget, limits)
        if wait > 0:  # hand the row back without an attempt; come back when allowed
            await asyncio.to_thread(self.store.defer_delivery, row.id, until=now + wait, now=now)
            return DeliveryOutcome(
                delivery_id=row.id, connector=row.connector, decision=None, come_back_in_s=wait
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
        decision = decide(
            result,
            attempt=row.attempts,
            age_s=now - row.created_at,
            policy=retry_policy,
            rng=self.rng,
        )
        nxt = await asyncio.to_thread(
            self._after_send, row, result, decision, key, budget, breaker, now, duration_ms
        )
        return DeliveryOutcome(
            delivery_id=row.id,
            connector=row.connector,
            decision=decision,
            come_back_in_s=decision.delay_s if decision.action == "retry" else None,
            next_in_line=nxt,
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
        await asyncio.to_thread(set_params, self.store, row.id, fresh, now=now)
        return fresh, None

    def _before_send(
        self, row: DeliveryRow, key: str, breaker: BreakerPolicy, *, check_breaker: bool
    ) -> tuple[dict[str, str], float]:
        """(refs of earlier sends for the entity, seconds the breaker says to wait)."""
        refs: dict[str, str] = {}
        if row.entity_key is not None:
            refs = self.store.entity_refs(
                connector=row.connector, destination=row.destination, entity_key=row.entity_key
            )
        wait = self.breaker.check(key, breaker) if check_breaker else 0.0
        return refs, wait

    def _after_send(
        self,
        row: DeliveryRow,
        result: SendResult,
        decision: Decision,
        key: str,
        budget: str,
        breaker: BreakerPolicy,
        now: float,
        duration_ms: float,
    ) -> str | None:
        """Pauses, breaker, the attempt record; the next delivery in line, if done."""
        if result.pause_s:
            self.limiter.pause(budget, result.pause_s)
        if result.outcome == "retry" and result.after:
            self.limiter.pause(budget, result.after)
        # A 4xx `fail` means the destination answered, and a 429 means it is up and pacing
        # us (the limiter handles that): only errors and silence trip the breaker.
        healthy = result.outcome != "retry" or result.status_code == 429
        self.breaker.record(key, breaker, success=healthy)
        self._record(row, result, decision, now, duration_ms)
        return self.store.next_in_line(row) if decision.action != "retry" else None

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
    ) -> None:
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
        finish = self.store.finish_attempt
        if decision.action == "delivered":
            finish(
                row.id,
                record,
                status="delivered",
                now=finished,
                ref=result.ref,
                params=self._scrubbed(row),
            )
        elif decision.action == "retry":
            finish(
                row.id,
                record,
                status="pending",
                now=finished,
                next_attempt_at=finished + decision.delay_s,
                last_error=detail,
            )
        else:
            reason = mask_text(decision.reason, self.secrets)[:DETAIL_LIMIT]
            finish(row.id, record, status="dead", now=finished, last_error=reason)
