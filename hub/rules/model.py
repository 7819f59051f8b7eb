"""The compiled rule model: frozen values built once by the loader, indexed for matching.

Matching cost must not grow with unrelated rules: rules are bucketed by exact event type
(globs are resolved once per event type and cached), and within a bucket by the value of
the equality test most rules share (e.g. `fields.Project: Launch`).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any

from hub.config.people import Directory
from hub.errors import Location
from hub.rules.conditions import Condition
from hub.rules.recurrence import Recurrence
from hub.rules.schedule import Schedule
from hub.rules.templates import CompiledExpression, CompiledValue

GLOB_CHARS = frozenset("*?[")
#: A fanned-out action's k-th delivery has action index `index + FANOUT_STRIDE * (k + 1)`:
#: its own idempotency key, and `Rule.spec_for` finds its spec again.
FANOUT_STRIDE = 1000
_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSpec:
    index: int
    connector: str
    operation: str | None
    destination: str | None
    params: CompiledValue
    location: Location
    #: `for_each:`: a list-valued expression; each item is `<for_each_as>` in templates.
    for_each: CompiledValue | None = None
    for_each_as: str = "item"
    #: `to: {person: ...}` or `to: {role: ...}`, rendered per item.
    to: CompiledValue | None = None
    #: (param, person attribute) the connector is addressed by, e.g. ("user", "discord").
    address: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class QuerySpec:
    """One `query:` step: `provider` is `store` or a source name (`notion`)."""

    name: str
    provider: str
    params: CompiledValue
    location: Location


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """`throttle` / `dedupe`: at most `limit` firings per rendered `key` per `per`."""

    key: CompiledValue
    per: timedelta
    limit: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Grouping:
    """`group`: collect matching events by `key` for `window`, then act once on all of them."""

    key: CompiledValue
    window: timedelta
    max_events: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    id: str
    description: str
    on: tuple[str, ...]
    where: tuple[Condition, ...]
    when: CompiledExpression | None
    actions: tuple[ActionSpec, ...]
    location: Location
    sources: tuple[str, ...] = ()  # `source:` globs; empty = any source
    stop: bool = False  # `continue: false`: later rules are not evaluated
    throttle: Window | None = None
    dedupe: Window | None = None
    group: Grouping | None = None
    #: `schedule:`: the scheduler emits `schedule.<id>` events, and `on` is exactly that.
    schedule: Schedule | Recurrence | None = None
    #: Occurrences missed while no scheduler ran: `latest` fires the newest, `all` each
    #: (oldest first), `none` nothing (`recurrence: {missed: ...}`; `schedule:` is latest).
    missed: str = "latest"
    #: `query:` steps run before the actions render; results are `query.<name>`.
    queries: tuple[QuerySpec, ...] = ()
    #: Who `to:` and the `mention` filter resolve against.
    people: Directory = field(default_factory=Directory)

    def spec_for(self, action_index: int) -> ActionSpec:
        """The action a delivery's index belongs to, fanned out or not."""
        return self.actions[action_index % FANOUT_STRIDE]

    def has_action(self, action_index: int) -> bool:
        return 0 <= action_index % FANOUT_STRIDE < len(self.actions)

    def accepts_source(self, source: str) -> bool:
        return not self.sources or any(fnmatchcase(source, p) for p in self.sources)


@dataclass(frozen=True, slots=True)
class _Bucket:
    """Rules for one event type: indexed by one equality path, the rest scanned."""

    path: str | None
    by_value: Mapping[Hashable, tuple[int, ...]]
    scanned: tuple[int, ...]

    def orders(self, event: Mapping[str, Any]) -> set[int]:
        found = set(self.scanned)
        if self.path is None:
            return found
        ok, value = lookup_path(event, self.path)
        if not ok:
            return found
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, Hashable):
                found.update(self.by_value.get(item, ()))
        return found


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSet:
    """Rules in load order with their indexes; safe to share between threads."""

    rules: tuple[Rule, ...]
    files: tuple[str, ...] = ()
    exact: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    globs: tuple[tuple[int, str], ...] = ()
    #: Problems that do not stop loading (a pattern no source emits), rendered `file:line:col`.
    warnings: tuple[str, ...] = ()
    _buckets: dict[str, _Bucket] = field(default_factory=dict, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def candidates(self, event: Mapping[str, Any]) -> list[Rule]:
        """Rules whose `on` matches the event's type and whose indexed test may hold."""
        bucket = self._bucket(str(event.get("type", "")))
        return [self.rules[i] for i in sorted(bucket.orders(event))]

    def _bucket(self, event_type: str) -> _Bucket:
        bucket = self._buckets.get(event_type)
        if bucket is None:
            orders = set(self.exact.get(event_type, ()))
            orders.update(o for o, pattern in self.globs if fnmatchcase(event_type, pattern))
            bucket = _index_bucket([(o, self.rules[o]) for o in sorted(orders)])
            with self._lock:
                if len(self._buckets) >= _CACHE_LIMIT:
                    self._buckets.clear()
                self._buckets[event_type] = bucket
        return bucket


def _index_bucket(rules: list[tuple[int, Rule]]) -> _Bucket:
    """Pick the equality path most rules test, and index them by its value."""
    counts: dict[str, int] = {}
    for _, rule in rules:
        for cond in rule.where:
            if cond.equals is not None:
                counts[cond.path] = counts.get(cond.path, 0) + 1
    if not counts or max(counts.values()) < 2:
        return _Bucket(None, {}, tuple(o for o, _ in rules))
    path = max(counts, key=lambda p: counts[p])
    by_value: dict[Hashable, list[int]] = {}
    scanned: list[int] = []
    for order, rule in rules:
        keys = next((c.equals for c in rule.where if c.path == path and c.equals is not None), None)
        if keys is None:
            scanned.append(order)
        else:
            for key in keys:
                by_value.setdefault(key, []).append(order)
    return _Bucket(path, {k: tuple(v) for k, v in by_value.items()}, tuple(scanned))


def build_ruleset(rules: list[Rule], files: list[str], warnings: tuple[str, ...] = ()) -> RuleSet:
    exact: dict[str, list[int]] = {}
    globs: list[tuple[int, str]] = []
    for order, rule in enumerate(rules):
        for pattern in rule.on:
            if GLOB_CHARS & set(pattern):
                globs.append((order, pattern))
            else:
                exact.setdefault(pattern, []).append(order)
    return RuleSet(
        rules=tuple(rules),
        files=tuple(files),
        exact={k: tuple(v) for k, v in exact.items()},
        globs=tuple(globs),
        warnings=warnings,
    )


def lookup_path(event: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    """Resolve a dotted path: CloudEvents attributes at the top, else inside `data`."""
    parts = path.split(".")
    node: Any = event if parts[0] in _TOP_LEVEL else event.get("data", {})
    for part in parts:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


_TOP_LEVEL = frozenset({"id", "source", "type", "subject", "time", "data", "specversion"})


class RuleSetRef:
    """The live rule set plus the last reload error; replaced whole, never mutated."""

    def __init__(self, ruleset: RuleSet) -> None:
        self._current = ruleset
        self.last_error: str | None = None
        self.loaded_at: float | None = None

    @property
    def current(self) -> RuleSet:
        return self._current

    def swap(self, ruleset: RuleSet, *, at: float | None = None) -> None:
        self._current = ruleset  # a single reference assignment is atomic in CPython
        self.last_error = None
        self.loaded_at = at
