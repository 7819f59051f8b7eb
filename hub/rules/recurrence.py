"""RFC 5545 recurrences (`recurrence:` rules) through python-dateutil, read in a time zone.

A recurrence is a kind of schedule: the scheduler asks it for the latest and next
occurrence exactly as it asks a cron `Schedule`, and an occurrence is claimed once in the
store (rule, occurrence time), so each occurrence fires once whatever the number of
schedulers or restarts. Occurrences are computed in local wall time (`timezone:`) from
`DTSTART` (default 2000-01-01 00:00 local) and returned as UTC instants.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr  # type: ignore[import-untyped]  # no stubs shipped

from hub.rules.schedule import ScheduleProblem, _zone

DEFAULT_START = datetime(2000, 1, 1)  # noqa: DTZ001 - a local wall time, zone applied later


@dataclass(frozen=True, slots=True, kw_only=True)
class Recurrence:
    """A validated RRULE (with its DTSTART) and the IANA zone it is read in."""

    rule_text: str
    timezone: str
    zone: ZoneInfo = field(compare=False, repr=False)
    _rule: Any = field(compare=False, repr=False)
    fixed_hours: bool = True

    @property
    def cron(self) -> str:
        """What the tick event carries in `fields.cron`: the recurrence text."""
        return self.rule_text

    @property
    def spec(self) -> str:
        return f"{self.rule_text} @ {self.timezone}"

    def latest_tick(self, at: datetime) -> datetime | None:
        local = self._rule.before(self._local(at), inc=True)
        return None if local is None else self._utc(local)

    def next_tick(self, after: datetime) -> datetime | None:
        local = self._rule.after(self._local(after), inc=False)
        return None if local is None else self._utc(local)

    def ticks_between(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Occurrences in (after, until], oldest first."""
        for local in self._rule.between(self._local(after), self._local(until), inc=True):
            tick = self._utc(local)
            if after < tick <= until:
                yield tick

    def _local(self, instant: datetime) -> datetime:
        # dateutil compares naive wall times: the rule is built on naive local DTSTART.
        return instant.astimezone(self.zone).replace(tzinfo=None, fold=0)

    def _utc(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self.zone).astimezone(UTC)


def parse_recurrence(text: str, timezone: str, start: str | None = None) -> Recurrence:
    """Check an RRULE (`FREQ=WEEKLY;BYDAY=MO;BYHOUR=9`, `RRULE:` prefix optional)."""
    zone = _zone(timezone)
    body = " ".join(text.split())
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    try:
        dtstart = datetime.fromisoformat(start) if start else DEFAULT_START
    except ValueError as exc:
        raise ScheduleProblem(
            f"start {start!r} is not an ISO 8601 local time (e.g. 2026-01-05T09:00)",
            key="schedule",
        ) from exc
    if dtstart.tzinfo is not None:
        dtstart = dtstart.astimezone(zone).replace(tzinfo=None)
    try:
        rule = rrulestr(body, dtstart=dtstart)
    except (ValueError, TypeError) as exc:
        raise ScheduleProblem(
            f"invalid RRULE '{body}': {exc} (RFC 5545, e.g. FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;"
            "BYMINUTE=0)",
            key="schedule",
        ) from exc
    if not isinstance(rule, rrule):
        raise ScheduleProblem("give one RRULE, not a set", key="schedule")
    label = body + (f";DTSTART={dtstart.isoformat()}" if start else "")
    recurrence = Recurrence(rule_text=label, timezone=timezone, zone=zone, _rule=rule)
    if recurrence.next_tick(datetime(2000, 1, 1, tzinfo=UTC) - timedelta(days=1)) is None:
        raise ScheduleProblem(f"RRULE '{body}' never fires", key="schedule")
    return recurrence
