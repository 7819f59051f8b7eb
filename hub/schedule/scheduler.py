"""The scheduler: fires each tick of every `schedule:` rule once, as an inbound event.

Any number of schedulers may run (`switchboard scheduler`, or the one in `serve`): a tick
fires where the store claim lands (`hub.store.schedules.claim_tick`) and nowhere else.
From then on it is an ordinary event for source "schedule": the worker normalizes,
matches and delivers it like a webhook.

By default only the newest due tick is fired. A scheduler that was down fires the most
recent tick it missed, once, and never one at or before the newest claimed tick; so a
restart never fires anything twice. A `recurrence:` rule chooses (`missed:`): `latest`
(the default), `all` (each missed occurrence, oldest first, each claimed on its own), or
`none` (a missed occurrence is claimed as skipped and never fires). A schedule seen for
the first time (a new rule, or a changed cron or zone) starts from that moment: ticks
from before it existed are not "missed".
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hub.clock import Clock
from hub.errors import StoreError
from hub.events import event_id_for
from hub.pipeline.queue import Queue
from hub.rules import Rule, RuleSetRef
from hub.rules.recurrence import Recurrence
from hub.rules.schedule import Schedule
from hub.sources.schedule import NAME as SCHEDULE_SOURCE
from hub.sources.schedule import tick_body, tick_provider_delivery_id
from hub.store import NewInbound, Store, schedules

log = logging.getLogger("switchboard.scheduler")

#: A tick fired later than this after its time is marked `caught_up` in the event.
CATCH_UP_AFTER = timedelta(minutes=1)
#: With `missed: all`, at most this many missed occurrences fire after an outage (newest).
MAX_CATCH_UP = 100
#: Claims kept per rule, for the record; the newest is always kept.
KEEP_TICKS = timedelta(days=30)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fired:
    """A tick this scheduler won and stored as an event."""

    rule_id: str
    tick: datetime
    event_id: str


class Scheduler:
    """Checks the live rule set for due ticks; `run_once` is one check, safe in any thread."""

    def __init__(
        self, store: Store, queue: Queue, rules: RuleSetRef, clock: Clock, *, name: str
    ) -> None:
        self.store = store
        self.queue = queue
        self.rules = rules
        self.clock = clock
        self.name = name
        self._lock = threading.Lock()
        #: rule id → (spec, newest tick known to be claimed): spares the store until due.
        self._claimed: dict[str, tuple[str, float]] = {}

    def run_once(self) -> list[Fired]:
        """Fire what is due now; the new events are enqueued for the workers."""
        fired: list[Fired] = []
        with self._lock:
            now = self.clock.now()
            for rule in self.rules.current.rules:
                if rule.schedule is None:
                    continue
                try:
                    fired += self._check(rule, rule.schedule, now)
                except StoreError:  # one rule's failure must not hold up the others
                    log.exception("schedule %s: could not check for due ticks", rule.id)
        if fired:
            try:
                self.queue.enqueue_events([f.event_id for f in fired])
            except Exception:
                # The events are durable; the worker's sweeper enqueues them later.
                log.exception("broker enqueue failed for %d schedule events", len(fired))
        return fired

    def _check(self, rule: Rule, schedule: Schedule | Recurrence, now: datetime) -> list[Fired]:
        tick = schedule.latest_tick(now)
        spec = schedule.spec
        cached = self._claimed.get(rule.id)
        if tick is None or (cached and cached[0] == spec and tick.timestamp() <= cached[1]):
            return []
        state = schedules.tick_state(self.store, rule_id=rule.id, spec=spec)
        if not state.spec_known:
            schedules.mark_seen(
                self.store, rule_id=rule.id, spec=spec, at=now.timestamp(), scheduler=self.name
            )
            log.info("schedule %s: new schedule '%s', first tick after %s", rule.id, spec, now)
            self._claimed[rule.id] = (spec, max(now.timestamp(), state.last_tick_at or 0.0))
            return []
        if state.last_tick_at is not None and tick.timestamp() <= state.last_tick_at:
            self._claimed[rule.id] = (spec, state.last_tick_at)
            return []
        if rule.missed == "none" and now - tick > CATCH_UP_AFTER:
            # Missed while no scheduler ran: claimed as skipped, so it never fires later.
            schedules.skip_tick(
                self.store,
                rule_id=rule.id,
                spec=spec,
                tick_at=tick.timestamp(),
                scheduler=self.name,
            )
            self._claimed[rule.id] = (spec, tick.timestamp())
            log.info(
                "schedule %s: skipped the missed occurrence of %s (missed: none)", rule.id, tick
            )
            return []
        ticks = [tick]
        if rule.missed == "all" and state.last_tick_at is not None:
            since = datetime.fromtimestamp(state.last_tick_at, tz=UTC)
            ticks = list(schedule.ticks_between(since, now))[-MAX_CATCH_UP:] or [tick]
        fired = []
        for each in ticks:
            if (done := self._claim(rule, schedule, spec, each, now)) is not None:
                fired.append(done)
        return fired

    def _claim(
        self, rule: Rule, schedule: Schedule | Recurrence, spec: str, tick: datetime, now: datetime
    ) -> Fired | None:
        event = self._event(rule, schedule, tick, now)
        won = schedules.claim_tick(
            self.store,
            rule_id=rule.id,
            spec=spec,
            tick_at=tick.timestamp(),
            scheduler=self.name,
            event=event,
        )
        self._claimed[rule.id] = (spec, tick.timestamp())
        if not won:
            return None
        try:
            schedules.prune_ticks(
                self.store, rule_id=rule.id, before=(tick - KEEP_TICKS).timestamp()
            )
        except StoreError:  # housekeeping only: the tick is fired, so report it as fired
            log.warning("schedule %s: could not prune old ticks", rule.id, exc_info=True)
        log.info("schedule %s: fired the tick of %s as event %s", rule.id, tick, event.id)
        return Fired(rule_id=rule.id, tick=tick, event_id=event.id)

    def _event(
        self, rule: Rule, schedule: Schedule | Recurrence, tick: datetime, now: datetime
    ) -> NewInbound:
        provider_delivery_id = tick_provider_delivery_id(rule.id, tick)
        return NewInbound(
            id=event_id_for(SCHEDULE_SOURCE, provider_delivery_id),
            source=SCHEDULE_SOURCE,
            provider_delivery_id=provider_delivery_id,
            received_at=now.timestamp(),
            headers={"content-type": "application/json"},
            body=tick_body(
                rule_id=rule.id,
                description=rule.description,
                cron=schedule.cron,
                timezone=schedule.timezone,
                tick=tick,
                local=tick.astimezone(schedule.zone),
                caught_up=now - tick > CATCH_UP_AFTER,
            ),
        )


class SchedulerService:
    """Runs `Scheduler.run_once` in a thread every `interval_s`: start(), then stop()."""

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        interval_s: float = 1.0,
        upkeep: Callable[[], object] | None = None,
        upkeep_interval_s: float = 60.0,
    ) -> None:
        self.scheduler = scheduler
        self.interval_s = interval_s
        #: Source upkeep (hub/schedule/upkeep.py), run at start and then every `upkeep_interval_s`
        #: (a minute: calendars are reconciled every few minutes, channels renewed daily).
        self._upkeep = upkeep
        self._upkeep_interval_s = upkeep_interval_s
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run_forever, name="switchboard-scheduler", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _run_forever(self) -> None:
        next_upkeep = 0.0
        while True:
            try:
                self.scheduler.run_once()
            except Exception:  # keep going; the next check may find the store back
                log.exception("schedule check failed")
            now = self.scheduler.clock.monotonic()
            if self._upkeep is not None and now >= next_upkeep:
                next_upkeep = now + self._upkeep_interval_s
                try:
                    self._upkeep()
                except Exception:
                    log.exception("source upkeep failed")
            # The interval only bounds how late a tick fires; due times come from the Clock.
            if self._stopping.wait(self.interval_s):
                return


def scheduler_name() -> str:
    """Who claimed a tick, in the store: host and process id."""
    return f"{socket.gethostname()}/{os.getpid()}"


def next_ticks(rules: RuleSetRef, now: datetime) -> list[tuple[str, datetime | None]]:
    """Each scheduled rule with its next tick (for the start-up message)."""
    return [
        (r.id, r.schedule.next_tick(now)) for r in rules.current.rules if r.schedule is not None
    ]
