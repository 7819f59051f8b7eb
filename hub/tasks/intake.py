"""Submit a parsed task list: one inbound event per new task, or a dry-run preview.

The request handler and the CLI only store events (one transaction) and enqueue their ids;
rules on `intake.<name>` turn each into a `notion.create` delivery, which the delivery
engine paces within the integration's 3 requests/s budget. So a 1,000-line list is 1,000
deliveries sent at Notion's pace, not a loop of API calls in the handler. A task's event id
comes from its content (`Task.key`): a list sent twice stores nothing new the second time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from hub.events import event_id_for
from hub.rules import RuleSet
from hub.sources.intake import EVENT_PREFIX, task_body, task_provider_delivery_id
from hub.sources.intake import NAME as INTAKE_SOURCE
from hub.store import NewInbound, Store
from hub.store.intake import known_event_ids
from hub.tasks.lists import TaskList

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")


@dataclass(frozen=True, slots=True, kw_only=True)
class IntakeResult:
    """What happened to a list: per task whether it is new, and every rejected line."""

    intake: str
    dry_run: bool
    task_list: TaskList
    #: Event ids (in task order) and whether each was already stored before this list.
    event_ids: tuple[str, ...]
    known: frozenset[str]

    @property
    def new_event_ids(self) -> list[str]:
        return [e for e in self.event_ids if e not in self.known]

    def to_dict(self) -> dict[str, Any]:
        tasks = [
            {**task.fields(), "event_id": event_id, "new": event_id not in self.known}
            for task, event_id in zip(self.task_list.tasks, self.event_ids, strict=True)
        ]
        new = len(self.new_event_ids)
        return {
            "intake": self.intake,
            "format": self.task_list.format,
            "dry_run": self.dry_run,
            "tasks": tasks,
            "rejected": [{"line": r.line, "reason": r.reason} for r in self.task_list.rejected],
            "new": new,
            "already_sent": len(self.event_ids) - new,
        }


def intake_names(ruleset: RuleSet) -> list[str]:
    """Intakes that exist: those some rule listens to (`on: intake.<name>`)."""
    names = set()
    for rule in ruleset.rules:
        for pattern in rule.on:
            if pattern.startswith(EVENT_PREFIX):
                names.add(pattern.removeprefix(EVENT_PREFIX))
    return sorted(names)


def has_intake(ruleset: RuleSet, name: str) -> bool:
    event_type = EVENT_PREFIX + name
    return any(fnmatchcase(event_type, p) for r in ruleset.rules for p in r.on)


def is_intake_name(name: str) -> bool:
    return bool(name) and set(name) <= _NAME_CHARS


def submit_tasks(
    store: Store, name: str, task_list: TaskList, *, received_at: float, dry_run: bool
) -> IntakeResult:
    """Store one event per task not seen before (unless `dry_run`); say which were new."""
    events = [
        NewInbound(
            id=event_id_for(INTAKE_SOURCE, task_provider_delivery_id(name, task.key)),
            source=INTAKE_SOURCE,
            provider_delivery_id=task_provider_delivery_id(name, task.key),
            received_at=received_at,
            headers={"content-type": "application/json"},
            body=task_body(intake=name, fmt=task_list.format, fields=task.fields()),
        )
        for task in task_list.tasks
    ]
    ids = tuple(e.id for e in events)
    if dry_run:
        known = known_event_ids(store, ids)
    else:
        known = {o.id for o in store.insert_events(events) if o.duplicate}
    return IntakeResult(
        intake=name, dry_run=dry_run, task_list=task_list, event_ids=ids, known=frozenset(known)
    )


def preview_lines(result: IntakeResult) -> Iterable[str]:
    """The preview people read (CLI): one line per task and per rejected line."""
    for task, event_id in zip(result.task_list.tasks, result.event_ids, strict=True):
        mark = "already sent" if event_id in result.known else "new"
        extra = [f"@{a}" for a in task.assignees] + [f"#{lb}" for lb in task.labels]
        if task.due:
            extra.append(f"due:{task.due}")
        yield f"line {task.line}: {mark:>12}  {task.title}{'  ' if extra else ''}{' '.join(extra)}"
    for rejected in result.task_list.rejected:
        yield f"line {rejected.line}:     rejected  {rejected.reason}"
