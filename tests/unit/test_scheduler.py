"""`schedule:` rules: each tick fires once across schedulers, restarts and outages, in its zone."""

from __future__ import annotations

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from connectors.base import ConnectorEnv, Destination
from hub.clock import FakeClock
from hub.errors import UnknownSource
from hub.pipeline.deliver import DeliveryEngine
from hub.pipeline.process import process_event
from hub.plugins import load_plugins
from hub.rules.schedule import Schedule, parse_schedule
from hub.rules.templates import TemplateEngine
from hub.runtime import Runtime, build_runtime, load_rules
from hub.schedule.scheduler import Fired, Scheduler, SchedulerService
from hub.sources.base import HookRequest
from hub.sources.schedule import ScheduleSource
from hub.store import open_store, schedules
from hub.validation import load_schema
from tests.support import make_settings, rules_error, rules_in, wait_until

PLUGINS = load_plugins()
DESTINATIONS = {"inbox": Destination(name="inbox", connector="log", options={"path": "x.log"})}
#: Monday 23 November 2026, a minute before 09:00 in Berlin (CET, UTC+1).
MONDAY_0859_BERLIN = datetime(2026, 11, 23, 7, 59, tzinfo=UTC)

WEEKDAYS = """
rules:
  - id: daily-summary
    description: Weekday summary
    schedule: "0 9 * * MON-FRI"
    timezone: Europe/Berlin
    actions:
      - log: {to: inbox, message: "summary {{ event.data.fields.local_time }}"}
"""


def _runtime(
    tmp_path: Path,
    closing_runtimes: list[Runtime],
    rules: str = WEEKDAYS,
    start: datetime | None = None,
) -> Runtime:
    rt = build_runtime(
        make_settings(tmp_path, rules=rules),
        PLUGINS,
        clock=FakeClock(start or MONDAY_0859_BERLIN),
    )
    closing_runtimes.append(rt)
    return rt


def _scheduler(rt: Runtime, name: str = "a") -> Scheduler:
    return Scheduler(rt.store, rt.queue, rt.rules, rt.clock, name=name)


def _advance_to(rt: Runtime, when: datetime) -> None:
    assert isinstance(rt.clock, FakeClock)
    rt.clock.advance((when - rt.clock.now()).total_seconds())


def _fired_ticks(rt: Runtime, rule_id: str = "daily-summary") -> list[datetime]:
    rows = schedules.list_ticks(rt.store, rule_id=rule_id)
    return [datetime.fromtimestamp(r.tick_at, UTC) for r in rows if r.status == "fired"]


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, s: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, s, tzinfo=UTC)


# --- exactly once --------------------------------------------------------------------------


EVERY_MINUTE = """
rules:
  - id: every-minute
    schedule: "* * * * *"
    actions:
      - log: {to: inbox, message: "{{ event.data.fields.tick }}"}
  - id: every-minute-too
    schedule: "* * * * *"
    timezone: Asia/Kolkata
    actions:
      - log: {to: inbox, message: "{{ event.data.fields.tick }}"}
"""


def test_two_schedulers_ticking_concurrently_fire_each_tick_exactly_once(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    # given two schedulers, each with its own connection pool, on one store
    rt = _runtime(tmp_path, closing_runtimes, EVERY_MINUTE, start=_utc(2026, 11, 23, 8, 0, 30))
    other_store = open_store(rt.settings.database_url)
    schedulers = [
        _scheduler(rt, "a"),
        Scheduler(other_store, rt.queue, rt.rules, rt.clock, name="b"),
    ]
    barrier = threading.Barrier(len(schedulers))

    def run(scheduler: Scheduler) -> list[Fired]:
        barrier.wait(timeout=10)
        return scheduler.run_once()

    fired: list[Fired] = []
    try:
        with ThreadPoolExecutor(max_workers=len(schedulers)) as pool:
            # when they check together every minute for 20 minutes (the first check only
            # records the new schedules)
            for _ in range(21):
                for result in pool.map(run, schedulers):
                    fired += result
                assert isinstance(rt.clock, FakeClock)
                rt.clock.advance(60)
    finally:
        other_store.close()
    # then every tick of both rules fired once, as one stored event each
    for rule_id in ("every-minute", "every-minute-too"):
        ticks = sorted(f.tick for f in fired if f.rule_id == rule_id)
        assert ticks == [_utc(2026, 11, 23, 8, 1) + timedelta(minutes=i) for i in range(20)]
        assert _fired_ticks(rt, rule_id) == ticks
    assert {r.scheduler for r in schedules.list_ticks(rt.store) if r.status == "fired"} <= {
        "a",
        "b",
    }
    assert rt.store.count_events() == 40
    assert len(fired) == 40


def test_a_restarted_scheduler_does_not_fire_a_tick_again(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    rt = _runtime(tmp_path, closing_runtimes)
    first = _scheduler(rt)
    assert first.run_once() == []  # a new schedule: nothing from before it existed
    _advance_to(rt, _utc(2026, 11, 23, 8, 0, 5))
    [fired] = first.run_once()
    assert fired.tick == _utc(2026, 11, 23, 8, 0)
    # when the process restarts (no memory) within the same minute, and again later that day
    assert _scheduler(rt, "restarted").run_once() == []
    _advance_to(rt, _utc(2026, 11, 23, 15, 0))
    assert _scheduler(rt, "restarted-again").run_once() == []
    # then only the next tick fires
    _advance_to(rt, _utc(2026, 11, 24, 8, 0))
    assert [f.tick for f in _scheduler(rt, "tuesday").run_once()] == [_utc(2026, 11, 24, 8, 0)]
    assert rt.store.count_events() == 2


def test_only_the_most_recent_missed_tick_is_caught_up_and_only_once(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    # given a scheduler that saw the rule on Monday before 09:00, then went down
    rt = _runtime(tmp_path, closing_runtimes)
    assert _scheduler(rt).run_once() == []
    # when it comes back on Wednesday at noon, missing Mon, Tue and Wed 09:00
    _advance_to(rt, _utc(2026, 11, 25, 11, 0))
    back = _scheduler(rt, "back")
    [caught_up] = back.run_once()
    # then only Wednesday's tick fires, marked as caught up, and only once
    assert caught_up.tick == _utc(2026, 11, 25, 8, 0)
    event = rt.store.get_event(caught_up.event_id)
    assert event is not None
    assert json.loads(event.body)["caught_up"] is True
    assert back.run_once() == []
    assert _scheduler(rt, "again").run_once() == []
    # and Thursday's fires on time, not marked
    _advance_to(rt, _utc(2026, 11, 26, 8, 0))
    [on_time] = back.run_once()
    event = rt.store.get_event(on_time.event_id)
    assert event is not None
    assert json.loads(event.body)["caught_up"] is False
    assert _fired_ticks(rt) == [_utc(2026, 11, 25, 8, 0), _utc(2026, 11, 26, 8, 0)]


def test_a_new_rule_does_not_fire_ticks_from_before_it_existed(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    rt = _runtime(tmp_path, closing_runtimes, start=_utc(2026, 11, 23, 12, 0))
    assert _scheduler(rt).run_once() == []  # Monday 09:00 was before the rule was seen
    _advance_to(rt, _utc(2026, 11, 24, 8, 0))
    assert [f.tick for f in _scheduler(rt).run_once()] == [_utc(2026, 11, 24, 8, 0)]


def test_a_changed_cron_expression_starts_from_the_change_not_from_the_past(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    rt = _runtime(tmp_path, closing_runtimes)
    scheduler = _scheduler(rt)
    scheduler.run_once()
    _advance_to(rt, _utc(2026, 11, 23, 8, 0))
    assert len(scheduler.run_once()) == 1
    # when the admin moves the summary to 12:00 at 13:00 (hot reload)
    _advance_to(rt, _utc(2026, 11, 23, 12, 0))
    rules_file = tmp_path / "rules" / "test.yaml"
    rules_file.write_text(WEEKDAYS.replace("0 9 * * MON-FRI", "0 12 * * MON-FRI"))
    rt.rules.swap(load_rules(rt.settings, rt.plugins, TemplateEngine()).ruleset)
    # then today's 12:00 (already past) is not fired, tomorrow's is
    assert scheduler.run_once() == []
    _advance_to(rt, _utc(2026, 11, 24, 11, 0))
    assert [f.tick for f in scheduler.run_once()] == [_utc(2026, 11, 24, 11, 0)]


def test_the_fired_event_is_enqueued_for_the_workers(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    rt = _runtime(tmp_path, closing_runtimes)
    scheduler = _scheduler(rt)
    scheduler.run_once()
    _advance_to(rt, _utc(2026, 11, 23, 8, 0))
    [fired] = scheduler.run_once()
    messages = list(rt.queue.broker.queues["events"].queue)
    assert len(messages) == 1
    assert fired.event_id.encode() in messages[0]
    row = rt.store.get_event(fired.event_id)
    assert row is not None
    assert (row.source, row.provider_delivery_id, row.status) == (
        "schedule",
        "daily-summary@2026-11-23T08:00:00Z",
        "received",
    )


# --- time zones ----------------------------------------------------------------------------


def test_weekday_0900_in_berlin_follows_daylight_saving_time() -> None:
    schedule = parse_schedule("0 9 * * MON-FRI", "Europe/Berlin")
    # autumn: Friday in summer time (UTC+2), Monday in winter time (UTC+1)
    assert schedule.next_tick(_utc(2026, 10, 23, 0)) == _utc(2026, 10, 23, 7)
    assert schedule.next_tick(_utc(2026, 10, 23, 7)) == _utc(2026, 10, 26, 8)
    # spring: the other way round
    assert schedule.next_tick(_utc(2026, 3, 27, 0)) == _utc(2026, 3, 27, 8)
    assert schedule.next_tick(_utc(2026, 3, 27, 8)) == _utc(2026, 3, 30, 7)
    assert schedule.latest_tick(_utc(2026, 3, 30, 7)) == _utc(2026, 3, 30, 7)
    assert schedule.latest_tick(_utc(2026, 3, 30, 6, 59, 59)) == _utc(2026, 3, 27, 8)


def test_a_daily_time_in_the_repeated_or_skipped_hour_fires_once_that_day() -> None:
    schedule = parse_schedule("30 2 * * *", "Europe/Berlin")
    # fall back (25 Oct): 02:30 happens twice; it fires at the first one only
    assert _ticks(schedule, _utc(2026, 10, 24, 0), 3) == [
        _utc(2026, 10, 24, 0, 30),
        _utc(2026, 10, 25, 0, 30),
        _utc(2026, 10, 26, 1, 30),
    ]
    assert schedule.latest_tick(_utc(2026, 10, 25, 1, 45)) == _utc(2026, 10, 25, 0, 30)
    # spring forward (29 Mar): 02:30 does not exist; it fires when the clock jumps (03:00)
    assert _ticks(schedule, _utc(2026, 3, 28, 0), 3) == [
        _utc(2026, 3, 28, 1, 30),
        _utc(2026, 3, 29, 1, 0),
        _utc(2026, 3, 30, 0, 30),
    ]


def test_an_hourly_schedule_fires_every_real_hour_across_the_change() -> None:
    schedule = parse_schedule("0 * * * *", "Europe/Berlin")
    day = _ticks(schedule, _utc(2026, 10, 24, 21, 59), 30)
    local_dates = [t.astimezone(schedule.zone).date().isoformat() for t in day]
    assert local_dates.count("2026-10-25") == 25  # the long day
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(day))


def test_the_scheduler_fires_once_per_day_through_the_autumn_change(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    rules = (
        WEEKDAYS
        + """
  - id: nightly
    schedule: "30 2 * * *"
    timezone: Europe/Berlin
    actions:
      - log: {to: inbox, message: night}
"""
    )
    rt = _runtime(tmp_path, closing_runtimes, rules, start=_utc(2026, 10, 22, 12, 0))
    scheduler = _scheduler(rt)
    fired: list[Fired] = []
    # when it checks every 10 minutes from Thursday noon to Tuesday noon
    while rt.clock.now() < _utc(2026, 10, 27, 12, 0):
        fired += scheduler.run_once()
        assert isinstance(rt.clock, FakeClock)
        rt.clock.advance(600)
    assert [f.tick for f in fired if f.rule_id == "daily-summary"] == [
        _utc(2026, 10, 23, 7),  # Friday 09:00 CEST
        _utc(2026, 10, 26, 8),  # Monday 09:00 CET
        _utc(2026, 10, 27, 8),
    ]
    assert [f.tick for f in fired if f.rule_id == "nightly"] == [
        _utc(2026, 10, 23, 0, 30),
        _utc(2026, 10, 24, 0, 30),
        _utc(2026, 10, 25, 0, 30),  # the first 02:30 only
        _utc(2026, 10, 26, 1, 30),
        _utc(2026, 10, 27, 1, 30),
    ]


def _ticks(schedule: Schedule, start: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    at = start
    for _ in range(count):
        tick = schedule.next_tick(at)
        assert tick is not None
        out.append(tick)
        at = tick
    return out


# --- rule files ----------------------------------------------------------------------------


def _load_error(tmp_path: Path, text: str) -> str:
    (tmp_path / "r.yaml").write_text(text)
    return rules_error(tmp_path, DESTINATIONS)


def _rule(*lines: str) -> str:
    body = "".join(f"    {line}\n" for line in lines)
    return f"rules:\n  - id: s\n{body}    actions:\n      - log: {{to: inbox, message: hi}}\n"


def test_an_invalid_cron_expression_is_a_located_rule_error(tmp_path: Path) -> None:
    assert _load_error(tmp_path, _rule('schedule: "0 25 * * *"')) == (
        "r.yaml:3:5: invalid cron expression '0 25 * * *' (minute hour day-of-month month "
        "day-of-week, e.g. '0 9 * * MON-FRI')"
    )
    assert _load_error(tmp_path, _rule('schedule: "0 0 9 * * *"')) == (
        "r.yaml:3:5: cron expression '0 0 9 * * *' has 6 fields, not 5 "
        "(minute hour day-of-month month day-of-week)"
    )
    assert _load_error(tmp_path, _rule('schedule: "0 0 30 2 *"')) == (
        "r.yaml:3:5: cron expression '0 0 30 2 *' never fires"
    )


def test_an_unknown_time_zone_is_located_at_the_zone(tmp_path: Path) -> None:
    assert _load_error(tmp_path, _rule('schedule: "0 9 * * *"', "timezone: Europe/Berln")) == (
        "r.yaml:4:5: unknown time zone 'Europe/Berln'; use an IANA name such as "
        "Europe/Berlin or UTC"
    )


def test_on_and_schedule_together_or_neither_are_rule_errors(tmp_path: Path) -> None:
    assert _load_error(tmp_path, _rule('schedule: "0 9 * * *"', "on: github.push")) == (
        "r.yaml:4:5: rule 's' has both `on:` and `schedule:`; remove `on:`: a scheduled rule "
        "fires on its own 'schedule.s' events; write another rule for other events"
    )
    assert _load_error(tmp_path, _rule()) == (
        "r.yaml:2:5: rule 's' needs `on:` (event types) or `schedule:` (cron); "
        'e.g. on: github.issues.opened, or schedule: "0 9 * * MON-FRI"'
    )
    assert _load_error(tmp_path, _rule("on: github.push", "timezone: UTC")) == (
        "r.yaml:4:5: `timezone:` applies only to rules with `schedule:`; "
        'remove it, or add schedule: "0 9 * * MON-FRI"'
    )


def test_a_scheduled_rule_matches_its_own_schedule_event_type(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(WEEKDAYS)
    [rule] = rules_in(tmp_path, DESTINATIONS).rules
    assert rule.on == ("schedule.daily-summary",)
    assert rule.schedule is not None
    assert rule.schedule.spec == "0 9 * * MON-FRI @ Europe/Berlin"


# --- end to end ----------------------------------------------------------------------------


def test_a_tick_is_processed_and_delivered_to_the_log_connector(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    # given the schedule source (entry point `schedule`) enabled in the worker
    rt = _runtime(tmp_path, closing_runtimes)
    sources = {**rt.sources, "schedule": ScheduleSource()}
    scheduler = _scheduler(rt)
    scheduler.run_once()
    _advance_to(rt, _utc(2026, 11, 23, 8, 0, 1))
    [fired] = scheduler.run_once()
    # when a worker processes the stored tick
    outcome = process_event(
        fired.event_id,
        store=rt.store,
        sources=sources,
        ruleset=rt.rules.current,
        destinations=rt.settings.destinations,
        clock=rt.clock,
        lease_s=30,
    )
    # then the rule matched a schema-valid event and planned one log delivery
    assert outcome is not None
    assert outcome.error is None
    assert outcome.matched_rules == ["daily-summary"]
    row = rt.store.get_event(fired.event_id)
    assert row is not None
    assert row.normalized is not None
    [event] = row.normalized
    Draft202012Validator(load_schema("event.schema.json")).validate(event)
    assert event["type"] == "schedule.daily-summary"
    assert event["data"]["fields"] == {
        "rule": "daily-summary",
        "tick": "2026-11-23T08:00:00Z",
        "local_time": "2026-11-23T09:00:00+01:00",
        "date": "2026-11-23",
        "timezone": "Europe/Berlin",
        "cron": "0 9 * * MON-FRI",
        "caught_up": False,
    }
    [(delivery_id, connector)] = outcome.pending
    assert connector == "log"
    # and sending it writes the rendered line to the log destination
    result = asyncio.run(_deliver(rt, delivery_id))
    assert result == "delivered"
    lines = (tmp_path / "inbox.log").read_text().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["summary 2026-11-23T09:00:00+01:00"]


async def _deliver(rt: Runtime, delivery_id: str) -> str:
    async with httpx.AsyncClient() as http:
        env = ConnectorEnv(http=http, base_dir=rt.settings.base_dir)
        engine = DeliveryEngine(
            store=rt.store,
            settings=rt.settings,
            connectors={"log": PLUGINS.connectors["log"](env)},
            clock=rt.clock,
            rng=rt.rng,
            limiter=rt.limiter,
            breaker=rt.breaker,
        )
        await engine.deliver(delivery_id)
    row = rt.store.get_delivery(delivery_id)
    assert row is not None
    return row.status


def test_the_schedule_source_refuses_webhooks() -> None:
    request = HookRequest(source="schedule", headers={}, body=b"{}", received_at=MONDAY_0859_BERLIN)
    with pytest.raises(UnknownSource) as info:
        ScheduleSource().verify(request, None, FakeClock())
    assert (info.value.status, info.value.code) == (404, "not_a_webhook")


def test_the_service_checks_in_a_thread_until_stopped(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    rt = _runtime(tmp_path, closing_runtimes)
    _scheduler(rt, "earlier").run_once()  # the rule was seen before 09:00
    _advance_to(rt, _utc(2026, 11, 23, 8, 0))
    service = SchedulerService(_scheduler(rt, "service"), interval_s=0.01)
    service.start()
    try:
        wait_until(lambda: rt.store.count_events() == 1, 5, "the service fired the 09:00 tick")
    finally:
        service.stop()
    assert _fired_ticks(rt) == [_utc(2026, 11, 23, 8, 0)]
