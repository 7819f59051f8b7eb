"""Cron schedules of `schedule:` rules: parsed once at load, ticks computed in the rule's zone.

croniter is used only here. Ticks are returned as UTC instants, so storage and comparison
never deal with local time. Daylight saving time follows classic cron: a wall time that
does not exist (spring forward) fires when the clock jumps past it, and a wall time that
happens twice (fall back) fires once, at its first occurrence, unless the hour field is
`*` (an hourly or finer schedule keeps firing every real hour).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter  # type: ignore[import-untyped]  # ships no type hints

#: croniter's named schedules; other `@` words are refused.
MACROS = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
DEFAULT_TIMEZONE = "UTC"
#: How many candidate ticks to look at before deciding a schedule never fires.
_SEARCH_LIMIT = 10_000


class ScheduleProblem(ValueError):
    """A bad `schedule:` or `timezone:` value; `key` says which, for the error location."""

    def __init__(self, message: str, *, key: Literal["schedule", "timezone"]) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """A validated cron expression and the IANA time zone it is read in."""

    cron: str
    timezone: str
    zone: ZoneInfo = field(compare=False, repr=False)
    #: False when the hour field is `*`: a repeated wall-clock hour then fires twice.
    fixed_hours: bool = True

    @property
    def spec(self) -> str:
        """What identifies the schedule in the store; a new spec starts a new history."""
        return f"{self.cron} @ {self.timezone}"

    def latest_tick(self, at: datetime) -> datetime | None:
        """The most recent tick at or before `at` (UTC); None if there is none."""
        # croniter's get_prev is strictly before its start: start just after `at`, then
        # step back over anything later than `at` (sub-second starts are truncated).
        for tick in self._ticks(at + timedelta(seconds=1), forward=False):
            if tick <= at:
                return tick
        return None

    def next_tick(self, after: datetime) -> datetime | None:
        """The first tick strictly after `after` (UTC); None if there is none."""
        for tick in self._ticks(after, forward=True):
            if tick > after:
                return tick
        return None

    def ticks_between(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Ticks in (after, until], oldest first."""
        tick = self.next_tick(after)
        while tick is not None and tick <= until:
            yield tick
            tick = self.next_tick(tick)

    def _ticks(self, start: datetime, *, forward: bool) -> Iterator[datetime]:
        try:
            it = croniter(self.cron, start.astimezone(self.zone))
            for _ in range(_SEARCH_LIMIT):
                local = it.get_next(datetime) if forward else it.get_prev(datetime)
                tick = local.astimezone(UTC)
                if self.fixed_hours and tick.astimezone(self.zone).fold == 1:
                    continue  # the second pass through a repeated hour (fall back)
                yield tick
        except CroniterError:
            return  # e.g. "0 0 30 2 *": no such date, ever


def parse_schedule(cron: str, timezone: str = DEFAULT_TIMEZONE) -> Schedule:
    """Check a cron expression (5 fields or an @macro) and a zone; ScheduleProblem says why."""
    text = " ".join(cron.split())
    if text.startswith("@"):
        if text not in MACROS:
            raise ScheduleProblem(
                f"unknown cron macro '{text}'; use one of {', '.join(sorted(MACROS))}",
                key="schedule",
            )
    elif len(text.split(" ")) != 5:
        raise ScheduleProblem(
            f"cron expression '{text}' has {len(text.split())} fields, not 5 "
            "(minute hour day-of-month month day-of-week)",
            key="schedule",
        )
    if not croniter.is_valid(text):
        raise ScheduleProblem(
            f"invalid cron expression '{text}' (minute hour day-of-month month day-of-week, "
            "e.g. '0 9 * * MON-FRI')",
            key="schedule",
        )
    zone = _zone(timezone)
    hours = croniter(text).expanded[1]
    schedule = Schedule(cron=text, timezone=timezone, zone=zone, fixed_hours=hours != ["*"])
    probe = datetime(2000, 1, 1, tzinfo=UTC)
    if schedule.next_tick(probe) is None:
        raise ScheduleProblem(f"cron expression '{text}' never fires", key="schedule")
    return schedule


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleProblem(
            f"unknown time zone '{name}'; use an IANA name such as Europe/Berlin or UTC",
            key="timezone",
        ) from exc
