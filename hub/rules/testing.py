"""`switchboard rules test` and `simulate`: dry runs through the worker's own functions.

Nothing here sends anything; matching and rendering are `hub.rules.matcher`'s, so a rule
that passes here behaves the same in the worker.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from connectors.base import RenderedAction
from hub.clock import Clock
from hub.errors import ConfigError, Location
from hub.events import event_id_for
from hub.rules.categories import Categories, with_category
from hub.rules.matcher import RenderProblem, explain, match_rules, render_actions
from hub.rules.model import Rule, RuleSet
from hub.sources.base import NormalizeContext, RawEvent, Source
from hub.yamldoc import YamlDocument


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    rule_id: str
    matched: bool
    reason: str | None
    actions: list[dict[str, Any]] = field(default_factory=list)


def dry_run(
    ruleset: RuleSet,
    event: Mapping[str, Any],
    *,
    queries: Mapping[str, Any] | None = None,
    categories: Categories | None = None,
) -> list[RuleVerdict]:
    """Every rule with whether it matches and why not, and the rendered actions if it does.

    Nothing is read: `query:` steps take their results from `queries` (a test case's
    canned results, by step name). `data.category` is set from `categories` as the worker
    sets it, unless the event has one.
    """
    if categories is not None:
        event = with_category(dict(event), categories)
    matched = {r.id for r in match_rules(ruleset, event)}
    verdicts = []
    for rule in ruleset.rules:
        reason = explain(rule, event)
        if reason is None and rule.id not in matched:
            reason = "an earlier rule with `continue: false` matched first"
        actions = (
            [rendered_to_dict(rule.id, r) for r in _render(rule, event, queries or {})]
            if rule.id in matched
            else []
        )
        verdicts.append(RuleVerdict(rule.id, rule.id in matched, reason, actions))
    return verdicts


def _render(
    rule: Rule, event: Mapping[str, Any], queries: Mapping[str, Any]
) -> list[RenderedAction | RenderProblem]:
    missing = [q.name for q in rule.queries if q.name not in queries]
    if missing:
        message = (
            f"query '{missing[0]}' is not run in a dry run; give its results in the test "
            f"case's `queries: {{{missing[0]}: [...]}}`"
        )
        return [RenderProblem(rule.id, spec.index, message) for spec in rule.actions]
    extra = {"query": {q.name: queries[q.name] for q in rule.queries}} if rule.queries else None
    return [r for _, r in render_actions(rule, event, extra=extra)]


def rendered_to_dict(rule_id: str, rendered: Any) -> dict[str, Any]:
    """`{rule, <connector[.op]>: params}`, the shape `tests:` expectations are written in."""
    if isinstance(rendered, RenderProblem):
        return {"rule": rule_id, "error": rendered.message}
    key = rendered.connector + (f".{rendered.operation}" if rendered.operation else "")
    return {"rule": rule_id, key: dict(rendered.params)}


def normalize_payload(
    source: Source,
    body: bytes,
    headers: Mapping[str, str],
    clock: Clock,
    provider_delivery_id: str = "simulated",
) -> list[dict[str, Any]]:
    """Run a raw provider payload through a source's normalizer (no signature check)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw = RawEvent(
        id=event_id_for(source.name, provider_delivery_id),
        source=source.name,
        provider_delivery_id=provider_delivery_id,
        headers=lowered,
        body=body,
        received_at=clock.now().astimezone(UTC),
    )
    return [e.to_dict() for e in source.normalize(raw, NormalizeContext(clock=clock))]


@dataclass(frozen=True, slots=True)
class CaseResult:
    file: str
    name: str
    location: Location
    passed: bool
    diff: str = ""


def run_rule_tests(
    ruleset: RuleSet,
    docs: list[YamlDocument],
    *,
    sources: Mapping[str, Source],
    clock: Clock,
    categories: Categories | None = None,
) -> list[CaseResult]:
    """Run every `tests:` case of the given rule files."""
    results = []
    for doc in docs:
        for index, case in enumerate(doc.data.get("tests") or []):
            location = doc.locate(("tests", index))
            try:
                events = _case_events(doc, case, sources, clock)
            except (ConfigError, OSError, ValueError) as exc:
                results.append(CaseResult(doc.file, case["name"], location, False, str(exc)))
                continue
            results.append(_check_case(ruleset, doc.file, case, location, events, categories))
    return results


def _case_events(
    doc: YamlDocument, case: Mapping[str, Any], sources: Mapping[str, Source], clock: Clock
) -> list[dict[str, Any]]:
    if "event" in case:
        return [dict(case["event"])]
    fixture = case["fixture"]
    source = sources.get(fixture["source"])
    if source is None:
        raise ConfigError(f"source '{fixture['source']}' is not enabled")
    path = Path(doc.file).parent / fixture["path"]
    return normalize_payload(source, path.read_bytes(), fixture.get("headers", {}), clock)


def _check_case(
    ruleset: RuleSet,
    file: str,
    case: Mapping[str, Any],
    location: Location,
    events: list[dict[str, Any]],
    categories: Categories | None = None,
) -> CaseResult:
    expect = case["expect"]
    got_rules: list[str] = []
    got_actions: list[dict[str, Any]] = []
    for event in events:
        for verdict in dry_run(ruleset, event, queries=case.get("queries"), categories=categories):
            if verdict.matched:
                got_rules.append(verdict.rule_id)
                got_actions += verdict.actions
    want: dict[str, Any] = {}
    got: dict[str, Any] = {}
    if "rules" in expect:
        want["rules"], got["rules"] = list(expect["rules"]), got_rules
    if "actions" in expect:
        want["actions"], got["actions"] = list(expect["actions"]), got_actions
    if want == got:
        return CaseResult(file, case["name"], location, True)
    diff = "\n".join(
        difflib.unified_diff(
            _pretty(want).splitlines(), _pretty(got).splitlines(), "expected", "got", lineterm=""
        )
    )
    return CaseResult(file, case["name"], location, False, diff)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
