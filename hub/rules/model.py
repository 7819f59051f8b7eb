"""The compiled rule model: frozen values built once by the loader."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from hub.errors import Location
from hub.rules.conditions import Condition
from hub.rules.templates import CompiledExpression, CompiledValue


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSpec:
    index: int
    connector: str
    operation: str | None
    destination: str | None
    params: CompiledValue
    location: Location


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    id: str
    description: str
    on: tuple[str, ...]
    where: tuple[Condition, ...]
    when: CompiledExpression | None
    actions: tuple[ActionSpec, ...]
    location: Location
    stop: bool = False  # `continue: false`: later rules are not evaluated


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleSet:
    """Rules in load order, indexed by exact event type; glob patterns scanned separately."""

    rules: tuple[Rule, ...]
    files: tuple[str, ...] = ()
    by_type: Mapping[str, tuple[tuple[int, Rule], ...]] = field(default_factory=dict)
    by_glob: tuple[tuple[int, str, Rule], ...] = ()

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def candidates(self, event_type: str) -> list[Rule]:
        """Rules whose `on` may match `event_type`, in load order."""
        found: dict[int, Rule] = dict(self.by_type.get(event_type, ()))
        for order, pattern, rule in self.by_glob:
            if order not in found and fnmatchcase(event_type, pattern):
                found[order] = rule
        return [found[k] for k in sorted(found)]


def build_ruleset(rules: list[Rule], files: list[str]) -> RuleSet:
    by_type: dict[str, list[tuple[int, Rule]]] = {}
    by_glob: list[tuple[int, str, Rule]] = []
    for order, rule in enumerate(rules):
        for pattern in rule.on:
            if any(ch in pattern for ch in "*?["):
                by_glob.append((order, pattern, rule))
            else:
                by_type.setdefault(pattern, []).append((order, rule))
    return RuleSet(
        rules=tuple(rules),
        files=tuple(files),
        by_type={k: tuple(v) for k, v in by_type.items()},
        by_glob=tuple(by_glob),
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
    """The live rule set; replaced whole, so a reader always sees one consistent set."""

    def __init__(self, ruleset: RuleSet) -> None:
        self._current = ruleset

    @property
    def current(self) -> RuleSet:
        return self._current

    def swap(self, ruleset: RuleSet) -> None:
        self._current = ruleset  # a single reference assignment is atomic in CPython
