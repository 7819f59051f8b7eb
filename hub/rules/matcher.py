"""Pure matching and rendering: the worker, `rules test` and `simulate` all call these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from connectors.base import RenderedAction
from hub.rules.fanout import FanoutProblem, Target, expand, fanned_index
from hub.rules.model import ActionSpec, Rule, RuleSet, lookup_path
from hub.rules.templates import TemplateProblem


@dataclass(frozen=True, slots=True)
class RenderProblem:
    rule_id: str
    action_index: int
    message: str
    #: Not a failure: nobody to send to (an unknown person); recorded as skipped.
    skip: bool = False


def rule_matches(rule: Rule, event: Mapping[str, Any]) -> bool:
    """Does one rule match an event dict (its `on` is assumed to have matched)?"""

    def lookup(path: str) -> tuple[bool, Any]:
        return lookup_path(event, path)

    if not all(cond.holds(lookup) for cond in rule.where):
        return False
    if rule.when is not None:
        return rule.when.evaluate({"event": event})
    return True


def explain(rule: Rule, event: Mapping[str, Any]) -> str | None:
    """Why `rule` does not match `event` (None when it does); the same tests as matching."""
    event_type = str(event.get("type", ""))
    if not any(fnmatchcase(event_type, pattern) for pattern in rule.on):
        return f"type {event_type!r} is not {' / '.join(rule.on)}"
    source = str(event.get("source", ""))
    if not rule.accepts_source(source):
        return f"source {source!r} is not {' / '.join(rule.sources)}"
    for cond in rule.where:
        found, value = lookup_path(event, cond.path)
        if not cond.test(found, value):
            shown = repr(value) if found else "absent"
            return f"where {cond.path}: {cond.source!r} does not hold (value: {shown})"
    if rule.when is not None:
        try:
            if not rule.when.evaluate({"event": event}):
                return f"when {rule.when.source!r} is false"
        except TemplateProblem as exc:
            return f"when failed: {exc.message}"
    return None


def match_rules(ruleset: RuleSet, event: Mapping[str, Any]) -> list[Rule]:
    """Rules that match, in load order; a matched `continue: false` rule ends the list."""
    matched: list[Rule] = []
    source = str(event.get("source", ""))
    for rule in ruleset.candidates(event):
        if not rule.accepts_source(source):
            continue
        try:
            ok = rule_matches(rule, event)
        except TemplateProblem:
            ok = False
        if ok:
            matched.append(rule)
            if rule.stop:
                break
    return matched


def render_actions(
    rule: Rule, event: Mapping[str, Any], *, extra: Mapping[str, Any] | None = None
) -> list[tuple[int, RenderedAction | RenderProblem]]:
    """Render each action's params against the event; a failure is reported, not raised.

    `extra` adds names to the template context (`events` and `group` for group rules).
    An action with `for_each:` or `to:` renders once per person (hub/rules/fanout.py).
    """
    context = {
        "event": event,
        "rule": {"id": rule.id, "description": rule.description},
        "people": rule.people.templates_view(),
        **(extra or {}),
    }
    out: list[tuple[int, RenderedAction | RenderProblem]] = []
    for spec in rule.actions:
        try:
            fanned, targets = expand(spec, context, rule.people)
        except (TemplateProblem, FanoutProblem) as exc:
            message = exc.message if isinstance(exc, TemplateProblem) else str(exc)
            out.append((spec.index, RenderProblem(rule.id, spec.index, message)))
            continue
        for position, target in enumerate(targets):
            index = fanned_index(spec.index, position) if fanned else spec.index
            out.append((index, _render_one(rule, spec, index, target)))
    return out


def _render_one(
    rule: Rule, spec: ActionSpec, index: int, target: Target
) -> RenderedAction | RenderProblem:
    if target.skip is not None:
        return RenderProblem(rule.id, index, target.skip, skip=True)
    try:
        params = spec.params.render(target.context)
    except TemplateProblem as exc:
        return RenderProblem(rule.id, index, exc.message)
    if target.address is not None:
        params = {**params, target.address[0]: target.address[1]}
    return RenderedAction(
        connector=spec.connector,
        operation=spec.operation,
        destination=spec.destination,
        params=params,
    )
