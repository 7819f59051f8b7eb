"""`recurrence:` rules: RFC 5545 or cron occurrences, each fired once, with a missed policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from hub.clock import FakeClock
from hub.errors import ConfigError
from hub.plugins import load_plugins
from hub.rules.recurrence import parse_recurrence
from hub.runtime import Runtime, build_runtime
from hub.schedule.scheduler import Scheduler
from hub.store import schedules
from tests.support import make_settings

PLUGINS = load_plugins()
#: Monday 23 November 2026, 08:59 in Berlin (CET, UTC+1).
MONDAY_0859_BERLIN = datetime(2026, 11, 23, 7, 59, tzinfo=UTC)


def _rules(missed: str, when: str = 'rrule: "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"') -> str:
    return f"""
rules:
  - id: weekly-report
    description: Write the weekly report
    recurrence: {{{when}, missed: {missed}}}
    timezone: Europe/Berlin
    actions:
      - log: {{to: inbox, message: "report {{{{ event.data.fields.date }}}}"}}
"""


def _runtime(tmp_path: Path, closing_runtimes: list[Runtime], rules: str) -> Runtime:
    clock = FakeClock(MONDAY_0859_BERLIN)
    rt = build_runtime(make_settings(tmp_path, rules=rules), PLUGINS, clock=clock)
    closing_runtimes.append(rt)
    return rt


def _advance_to(rt: Runtime, when: datetime) -> None:
    assert isinstance(rt.clock, FakeClock)
    rt.clock.advance((when - rt.clock.now()).total_seconds())


def _scheduler(rt: Runtime, name: str) -> Scheduler:
    return Scheduler(rt.store, rt.queue, rt.rules, rt.clock, name=name)


def _ticks(rt: Runtime, status: str = "fired") -> list[datetime]:
    rows = schedules.list_ticks(rt.store, rule_id="weekly-report")
    return [datetime.fromtimestamp(r.tick_at, UTC) for r in rows if r.status == status]


def _monday_0900_berlin(day: int, month: int = 11) -> datetime:
    return datetime(2026, month, day, 8, 0, tzinfo=UTC)  # CET: 09:00 is 08:00 UTC


def test_an_rrule_is_read_in_its_zone_across_daylight_saving_time() -> None:
    weekly = parse_recurrence("RRULE:FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0", "Europe/Berlin")
    # 09:00 Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
    assert weekly.next_tick(datetime(2026, 3, 24, tzinfo=UTC)) == datetime(
        2026, 3, 30, 7, 0, tzinfo=UTC
    )
    assert weekly.latest_tick(datetime(2026, 3, 29, tzinfo=UTC)) == datetime(
        2026, 3, 23, 8, 0, tzinfo=UTC
    )
    monthly = parse_recurrence("FREQ=MONTHLY;BYMONTHDAY=1;COUNT=2", "UTC", "2026-01-01T10:00")
    assert list(
        monthly.ticks_between(datetime(2025, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))
    ) == [datetime(2026, 1, 1, 10, tzinfo=UTC), datetime(2026, 2, 1, 10, tzinfo=UTC)]


def test_missed_all_fires_each_missed_occurrence_once_whatever_the_schedulers(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    # given a scheduler that saw the recurrence on Monday before 09:00, then went down
    rt = _runtime(tmp_path, closing_runtimes, _rules("all"))
    assert _scheduler(rt, "a").run_once() == []
    # when two schedulers come back three weeks later, after Monday 7 December 09:00
    _advance_to(rt, datetime(2026, 12, 8, 12, 0, tzinfo=UTC))
    fired = _scheduler(rt, "b").run_once() + _scheduler(rt, "c").run_once()
    # then each of the three missed Mondays fired once, oldest first
    missed = [_monday_0900_berlin(23), _monday_0900_berlin(30), _monday_0900_berlin(7, 12)]
    assert [f.tick for f in fired] == missed
    assert _ticks(rt) == missed
    bodies = [json.loads(rt.store.get_event(f.event_id).body) for f in fired]  # type: ignore[union-attr]
    assert [b["date"] for b in bodies] == ["2026-11-23", "2026-11-30", "2026-12-07"]
    assert all(b["caught_up"] for b in bodies)
    # and a restart fires none of them again
    assert _scheduler(rt, "d").run_once() == []


def test_missed_none_skips_occurrences_from_an_outage_and_fires_the_next_on_time(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    rt = _runtime(tmp_path, closing_runtimes, _rules("none", 'cron: "0 9 * * MON"'))
    assert _scheduler(rt, "a").run_once() == []
    _advance_to(rt, datetime(2026, 12, 2, 12, 0, tzinfo=UTC))
    assert _scheduler(rt, "b").run_once() == []  # Monday 30 November was missed: none
    assert _ticks(rt, "skipped") == [_monday_0900_berlin(30)]
    _advance_to(rt, _monday_0900_berlin(7, 12))
    [on_time] = _scheduler(rt, "b").run_once()
    assert on_time.tick == _monday_0900_berlin(7, 12)
    assert _ticks(rt) == [_monday_0900_berlin(7, 12)]


def test_missed_latest_is_the_default_and_fires_only_the_newest(
    tmp_path: Path, closing_runtimes: list[Runtime]
) -> None:
    rt = _runtime(tmp_path, closing_runtimes, _rules("latest"))
    assert _scheduler(rt, "a").run_once() == []
    _advance_to(rt, datetime(2026, 12, 8, 12, 0, tzinfo=UTC))
    assert [f.tick for f in _scheduler(rt, "b").run_once()] == [_monday_0900_berlin(7, 12)]


def test_a_bad_rrule_is_a_located_rule_error(tmp_path: Path) -> None:
    bad = _rules("all", 'rrule: "FREQ=SOMETIMES"')
    with pytest.raises(ConfigError) as caught:
        build_runtime(make_settings(tmp_path, rules=bad), PLUGINS)
    assert "rules/test.yaml:5:5: invalid RRULE 'FREQ=SOMETIMES'" in str(caught.value)
