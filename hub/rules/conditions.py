"""`where:` conditions: dotted paths tested with equality, `in`, globs and change tests.

Written forms (all must hold):
    fields.Project: Launch                    equality
    fields.Priority: [P0, P1]                 in
    fields.Title: {glob: "Release *"}         also: eq, in, not, exists, regex,
    changes.Status: {to: Done}                gt, gte, lt, lte, changed, from, to
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

OPERATORS = (
    "eq",
    "in",
    "not",
    "exists",
    "glob",
    "regex",
    "gt",
    "gte",
    "lt",
    "lte",
    "changed",
    "from",
    "to",
)

Test = Callable[[bool, Any], bool]


@dataclass(frozen=True, slots=True)
class Condition:
    """One `path: test` entry of a rule's `where`."""

    path: str
    test: Test
    source: Any  # as written, for explanations
    #: Values for a plain equality/`in` test (indexable), else None.
    equals: tuple[Hashable, ...] | None = None

    def holds(self, lookup: Callable[[str], tuple[bool, Any]]) -> bool:
        found, value = lookup(self.path)
        return self.test(found, value)


def compile_condition(path: str, spec: Any) -> Condition:
    """Turn one written entry into a Condition; raises ValueError with what to fix."""
    return Condition(path, _compile(spec), spec, _equality_values(spec))


def _equality_values(spec: Any) -> tuple[Hashable, ...] | None:
    """`Project: Launch` or `Priority: [P0, P1]` can be answered from an index."""
    values = spec if isinstance(spec, list) else [spec]
    if isinstance(spec, Mapping) or not values:
        return None
    if all(isinstance(v, str | int | float | bool) for v in values):
        return tuple(values)
    return None


def _compile(spec: Any) -> Test:
    if isinstance(spec, list):
        options = list(spec)
        return lambda found, value: found and _is_in(value, options)
    if not isinstance(spec, Mapping):
        return lambda found, value: found and _equals(value, spec)
    unknown = [k for k in spec if k not in OPERATORS]
    if unknown:
        raise ValueError(f"unknown operator '{unknown[0]}'; use one of: {', '.join(OPERATORS)}")
    tests = [_operator(str(op), arg) for op, arg in spec.items()]
    return lambda found, value: all(t(found, value) for t in tests)


def _operator(op: str, arg: Any) -> Test:
    if op == "eq":
        return lambda found, value: found and _equals(value, arg)
    if op == "in":
        if not isinstance(arg, list):
            raise ValueError("'in' takes a list, e.g. in: [P0, P1]")
        return lambda found, value: found and _is_in(value, arg)
    if op == "not":
        inner = _compile(arg)
        return lambda found, value: not inner(found, value)
    if op == "exists":
        return lambda found, value: (found and value is not None) == bool(arg)
    if op == "glob":
        pattern = str(arg)
        return lambda found, value: found and isinstance(value, str) and fnmatchcase(value, pattern)
    if op == "regex":
        try:
            regex = re.compile(str(arg))
        except re.error as exc:
            raise ValueError(f"invalid regex {arg!r}: {exc}") from exc
        return lambda found, value: found and isinstance(value, str) and bool(regex.search(value))
    if op in ("gt", "gte", "lt", "lte"):
        if isinstance(arg, bool) or not isinstance(arg, int | float):
            raise ValueError(f"'{op}' takes a number")
        compare = {
            "gt": float.__gt__,
            "gte": float.__ge__,
            "lt": float.__lt__,
            "lte": float.__le__,
        }[op]
        return lambda found, value: (
            found
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and compare(float(value), float(arg))
        )
    if op == "changed":
        return lambda found, value: _has_changed(found, value) == bool(arg)
    # from / to: the side of a {from, to} change, compared like a plain condition
    side = op
    inner = _compile(arg)
    return lambda found, value: (
        found and isinstance(value, Mapping) and side in value and inner(True, value[side])
    )


def _has_changed(found: bool, value: Any) -> bool:
    return found and isinstance(value, Mapping) and value.get("from") != value.get("to")


def _equals(value: Any, expected: Any) -> bool:
    if isinstance(value, list) and not isinstance(expected, list):
        return expected in value  # "Assignee: Ada" holds when Ada is one of the assignees
    return bool(value == expected)


def _is_in(value: Any, options: list[Any]) -> bool:
    if isinstance(value, list):
        return any(v in options for v in value)
    return value in options
