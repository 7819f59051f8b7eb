"""Task automation helpers (#20): stalled tasks, workload-based assignment, and the
"previous occurrence still open" policy of recurring tasks.

Pure functions over query results (lists of `{id, title, fields, last_edited_time}` as
`notion.query` returns them), registered as template filters. No state is kept: "report
once per stall period" holds because a task is `new` in a stall only on the one schedule
tick whose interval contains the moment it crossed a period boundary, and a tick's event
id (so each delivery's idempotency key) is fixed, so a re-run of a tick sends nothing new.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import parse_duration
from hub.rules.recurrence import parse_recurrence
from hub.rules.schedule import ScheduleProblem, parse_schedule

__all__ = [
    "WORKFLOW_FILTERS",
    "if_previous_open",
    "pick_assignee",
    "stalled",
    "tick_interval",
]

DAY_S = 86_400.0


def stalled(
    items: Iterable[Any],
    statuses: Mapping[str, Any],
    at: Any,
    every: Any = None,
    status_property: str = "Status",
) -> list[dict[str, Any]]:
    """`query.open | stalled({'In progress': '3d'}, event)`: the tasks whose status is one
    of `statuses` and whose last edit is older than that status's age, oldest first.

    Each comes back with `stall: {status, limit_days, age_days, period, new, escalate}`:
    `period` is how many whole stall periods it has sat (1 = stalled, 2 = twice as long);
    `new` is true on the one tick whose interval (`every`, by default the interval of the
    schedule that fired `at`) saw it enter that period; `escalate` is `new` from period 2.
    A task edited since (its status changed, say) has a fresh `last_edited_time` and so
    leaves the stalled set by itself.
    """
    now = _instant(at)
    window = _seconds(every) if every is not None else tick_interval(at, now)
    limits = {str(status): _seconds(age) for status, age in (statuses or {}).items()}
    out: list[dict[str, Any]] = []
    for item in items or []:
        if not isinstance(item, Mapping):
            continue
        status = _field(item, status_property)
        limit = limits.get(str(status)) if status is not None else None
        edited = _parse_time(item.get("last_edited_time"))
        if not limit or edited is None:
            continue
        age = (now - edited).total_seconds()
        period = math.floor(age / limit)
        if period < 1:
            continue
        before = math.floor((age - window) / limit) if window > 0 else period
        new = before < period
        out.append(
            {
                **item,
                "stall": {
                    "status": status,
                    "limit_days": round(limit / DAY_S, 2),
                    "age_days": math.floor(age / DAY_S),
                    "period": period,
                    "new": new,
                    "escalate": new and period >= 2,
                },
            }
        )
    out.sort(key=lambda t: (str(t.get("last_edited_time")), str(t.get("id"))))
    return out


def tick_interval(event: Any, now: datetime | None = None) -> float:
    """Seconds since the previous tick of the schedule that fired `event` (its
    `fields.cron`, a cron line or an RRULE, read in `fields.timezone`); one day if the
    event is not a schedule tick."""
    fields = _fields_of(event)
    cron, zone = fields.get("cron"), str(fields.get("timezone") or "UTC")
    now = now or _instant(event)
    if not isinstance(cron, str) or not cron.strip():
        return DAY_S
    try:
        schedule: Any = parse_schedule(cron, zone)
    except ScheduleProblem:
        rule, _, start = cron.partition(";DTSTART=")
        try:
            schedule = parse_recurrence(rule, zone, start or None)
        except ScheduleProblem:
            return DAY_S
    previous = schedule.latest_tick(now - timedelta(seconds=1))
    return DAY_S if previous is None else (now - previous).total_seconds()


def pick_assignee(
    open_tasks: Iterable[Any],
    people: Any,
    by: str = "count",
    estimate: str = "Estimate",
    role: str | None = None,
    unavailable: Iterable[Any] = (),
    assignee_property: str = "Assignee",
    require: str | None = "notion",
    missing_estimate: float = 1.0,
) -> dict[str, Any] | None:
    """`query.open | pick_assignee(people, role='team-member')`: the person with the least
    open work, or None if nobody can take it.

    Work is the number of open tasks naming them (`by='count'`) or the sum of their
    `estimate` property (`by='estimate'`; a task with no estimate weighs
    `missing_estimate`). Skipped: people without `role` (if given), marked unavailable
    (`available: false` / `unavailable: true` in their data, or named in `unavailable`),
    and people without a `require` id (`notion`: the write-back needs a Notion user id).
    Ties go to the first config key in alphabetical order. The result is the person's
    data with `load` and `reason` (one sentence, for the comment on the task).
    """
    if by not in ("count", "estimate"):
        raise ValueError(f"pick_assignee: by must be 'count' or 'estimate', not {by!r}")
    candidates = [p for p in _people_list(people) if not role or role in (p.get("roles") or [])]
    away = {str(u).strip().lower() for u in unavailable or [] if u not in (None, "")}
    skipped = [p for p in candidates if _unavailable(p, away)]
    able = [
        p
        for p in candidates
        if p not in skipped and (not require or p.get(require) not in (None, ""))
    ]
    if not able:
        return None
    loads = {str(p.get("key")): 0.0 for p in able}
    for task in open_tasks or []:
        if not isinstance(task, Mapping):
            continue
        names = _assignees(task, assignee_property)
        weight = 1.0 if by == "count" else _estimate(task, estimate, missing_estimate)
        for person in able:
            if _names(person) & names:
                loads[str(person.get("key"))] += weight
    ranked = sorted(able, key=lambda p: (loads[str(p.get("key"))], str(p.get("key"))))
    chosen = ranked[0]
    unit = "open task" if by == "count" else f"{estimate} point"
    others = ", ".join(
        f"{p.get('name')} {_amount(loads[str(p.get('key'))], unit)}" for p in ranked[1:4]
    )
    reason = (
        f"Assigned to {chosen.get('name')}: least open work "
        f"({_amount(loads[str(chosen.get('key'))], unit)}"
        + (f"; {others}" if others else "")
        + ")."
    )
    if skipped:
        reason += " Unavailable: " + ", ".join(str(p.get("name")) for p in skipped) + "."
    return {**chosen, "load": loads[str(chosen.get("key"))], "reason": reason}


def if_previous_open(
    previous: Iterable[Any], policy: str = "skip", current: Any = None
) -> list[Any]:
    """`for_each: {$expr: "query.previous | if_previous_open('skip', title)"}`: `[]` when
    `policy` is `skip` and a previous occurrence (a page in `previous`, other than one
    titled `current`) is still open, else one item (the open ones, under `previous`)."""
    if policy not in ("skip", "create"):
        raise ValueError(f"if_previous_open: policy must be 'skip' or 'create', not {policy!r}")
    still_open = [
        p
        for p in previous or []
        if isinstance(p, Mapping) and (current is None or p.get("title") != current)
    ]
    if still_open and policy == "skip":
        return []
    return [{"previous": still_open}]


def _amount(value: float, unit: str) -> str:
    shown = int(value) if value == int(value) else round(value, 2)
    return f"{shown} {unit}{'' if shown == 1 else 's'}"


def _people_list(people: Any) -> list[Mapping[str, Any]]:
    values = people.values() if isinstance(people, Mapping) else people or []
    return [p for p in values if isinstance(p, Mapping)]


def _unavailable(person: Mapping[str, Any], away: set[str]) -> bool:
    if person.get("available") is False or person.get("unavailable") is True:
        return True
    return bool(_names(person) & away)


def _names(person: Mapping[str, Any]) -> set[str]:
    return {
        str(person[k]).strip().lower()
        for k in ("key", "name", "email", "notion")
        if person.get(k) not in (None, "")
    }


def _assignees(task: Mapping[str, Any], prop: str) -> set[str]:
    fields = task.get("fields") or {}
    out: set[str] = set()
    for key in (prop, f"{prop} emails"):
        value = fields.get(key) if isinstance(fields, Mapping) else None
        values = value if isinstance(value, list) else [value]
        out |= {str(v).strip().lower() for v in values if v not in (None, "")}
    return out


def _estimate(task: Mapping[str, Any], prop: str, missing: float) -> float:
    value = _field(task, prop)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return missing
    return number if math.isfinite(number) and number >= 0 else missing


def _field(item: Mapping[str, Any], name: str) -> Any:
    fields = item.get("fields")
    return fields.get(name) if isinstance(fields, Mapping) else None


def _fields_of(event: Any) -> Mapping[str, Any]:
    if not isinstance(event, Mapping):
        return {}
    data = event.get("data")
    fields = data.get("fields") if isinstance(data, Mapping) else None
    return fields if isinstance(fields, Mapping) else {}


def _instant(at: Any) -> datetime:
    """An event (its tick, else its time), a datetime or an ISO 8601 text."""
    if isinstance(at, Mapping):
        found = _parse_time(_fields_of(at).get("tick")) or _parse_time(at.get("time"))
    else:
        found = _parse_time(at)
    if found is None:
        raise ValueError(f"stalled: {at!r} is not an event or a time (pass `event`)")
    return found


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _seconds(value: Any) -> float:
    return parse_duration(value).total_seconds()


WORKFLOW_FILTERS: dict[str, Callable[..., Any]] = {
    "stalled": stalled,
    "pick_assignee": pick_assignee,
    "if_previous_open": if_previous_open,
}
