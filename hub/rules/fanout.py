"""`for_each:` and `to:` at render time: one action spec → one delivery per person.

Each fanned-out delivery gets its own action index (`FANOUT_STRIDE`), so its own
idempotency key: a replay re-sends only the person whose message failed. Someone the
directory does not know is a skipped delivery with the reason, never a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.config.people import Directory, Person
from hub.rules.model import FANOUT_STRIDE, ActionSpec
from hub.rules.templates import CompiledValue

#: A guard against a template that fans out over the wrong list (every page of a query).
MAX_FANOUT = FANOUT_STRIDE - 1
#: Keys of `to:` that address people; anything else under `to` is the connector's own.
TO_KEYS = frozenset({"person", "role"})


class FanoutProblem(Exception):
    """Nothing can be rendered for this action (its `for_each:` is not a list)."""


@dataclass(frozen=True, slots=True)
class Target:
    """One rendering of a spec: the template context, and why it is skipped if it is."""

    context: Mapping[str, Any]
    address: tuple[str, str] | None = None
    skip: str | None = None


def is_addressing(value: Any) -> bool:
    """`to: {person: ...}` / `to: {role: ...}` (the log connector's own `to:` is a string)."""
    return isinstance(value, Mapping) and bool(value) and set(value) <= TO_KEYS


def expand(
    spec: ActionSpec, context: Mapping[str, Any], people: Directory
) -> tuple[bool, list[Target]]:
    """(fanned out?, the targets) of one action: one per item and person; `context`
    holds `people` (the directory's template view)."""
    base = context
    fanned = spec.for_each is not None
    items: list[Mapping[str, Any]] = [base]
    if spec.for_each is not None:
        value = spec.for_each.render(base)
        if value is None:
            value = []
        if not isinstance(value, list):
            raise FanoutProblem(f"for_each: expected a list, got {type(value).__name__}")
        items = [{**base, spec.for_each_as: item} for item in value]
    out: list[Target] = []
    for item in items:
        if spec.to is None:
            out.append(Target(item))
            continue
        many, targets = _address(spec, spec.to, item, people)
        fanned = fanned or many
        out.extend(targets)
    if len(out) > MAX_FANOUT:
        raise FanoutProblem(
            f"the action fans out to {len(out)} deliveries (at most {MAX_FANOUT}): "
            "check what for_each: / to: name"
        )
    return fanned, out


def _address(
    spec: ActionSpec, to_value: CompiledValue, context: Mapping[str, Any], people: Directory
) -> tuple[bool, list[Target]]:
    to = to_value.render(context)
    if "role" in to:
        role = str(to["role"])
        members = people.in_role(role)
        if not members:
            return True, [Target(context, skip=f"nobody in people: has the role '{role}'")]
        return True, [_target(spec, context, p) for p in members]
    ref = to.get("person")
    refs = ref if isinstance(ref, list) else [ref]
    out = []
    for one in refs:
        person = people.find(one)
        if person is None:
            known = ", ".join(p.key for p in people.people) or "nobody yet"
            out.append(
                Target(
                    context,
                    skip=f"no person {one!r} in people: (known: {known}); add them with "
                    "their name or email as Notion shows it",
                )
            )
        else:
            out.append(_target(spec, context, person))
    return isinstance(ref, list), out


def _target(spec: ActionSpec, context: Mapping[str, Any], person: Person) -> Target:
    inner = {**context, "person": person.as_dict()}
    if spec.address is None:
        return Target(inner)
    param, attribute = spec.address
    value = getattr(person, attribute)
    if not value:
        return Target(
            inner,
            skip=f"person '{person.key}' has no {attribute} id: add "
            f"people.{person.key}.{attribute} to switchboard.yaml",
        )
    return Target(inner, address=(param, value))


def fanned_index(spec_index: int, position: int) -> int:
    return spec_index + FANOUT_STRIDE * (position + 1)
