"""Indexed matching gives exactly the matches of a naive scan over every rule."""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.errors import Location
from hub.rules import Rule, match_rules
from hub.rules.conditions import compile_condition
from hub.rules.matcher import rule_matches
from hub.rules.model import build_ruleset

TYPES = ["github.issues.opened", "github.issues.closed", "github.push", "notion.page.created"]
PATTERNS = [*TYPES, "github.*", "github.issues.*", "*.created", "notion.*"]
VALUES = ["Launch", "Beta", "Ops", 1, 2]
PATHS = ["fields.Project", "fields.Priority", "entity.kind"]

condition_specs = st.one_of(
    st.sampled_from(VALUES),
    st.lists(st.sampled_from(VALUES), min_size=1, max_size=3),
    st.fixed_dictionaries({"not": st.sampled_from(VALUES)}),
    st.fixed_dictionaries({"exists": st.booleans()}),
)


@st.composite
def rules(draw: st.DrawFn, index: int) -> Rule:
    where = draw(st.dictionaries(st.sampled_from(PATHS), condition_specs, max_size=2))
    return Rule(
        id=f"r{index}",
        description="",
        on=tuple(draw(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2))),
        sources=tuple(draw(st.sampled_from([[], ["github/*"], ["notion/*"]]))),
        where=tuple(compile_condition(p, s) for p, s in where.items()),
        when=None,
        actions=(),
        location=Location("r.yaml", index + 1, 1),
        stop=draw(st.booleans()) and draw(st.booleans()),
    )


rule_lists = st.integers(min_value=0, max_value=30).flatmap(
    lambda n: st.tuples(*(rules(i) for i in range(n)))
)
field_values = st.one_of(
    st.sampled_from(VALUES), st.lists(st.sampled_from(VALUES), max_size=3), st.none()
)
events = st.builds(
    lambda type_, source, fields, kind: {
        "type": type_,
        "source": source,
        "data": {"entity": {"kind": kind}, "fields": fields},
    },
    st.sampled_from(TYPES),
    st.sampled_from(["github/o/r", "notion/workspace/w"]),
    st.dictionaries(st.sampled_from(["Project", "Priority"]), field_values, max_size=2),
    st.sampled_from(["task", "Launch", "issue"]),
)


def naive(rules: tuple[Rule, ...], event: dict[str, Any]) -> list[str]:
    out = []
    for rule in rules:
        if not any(fnmatchcase(event["type"], p) for p in rule.on):
            continue
        if rule.accepts_source(event["source"]) and rule_matches(rule, event):
            out.append(rule.id)
            if rule.stop:
                break
    return out


@settings(max_examples=200, deadline=None)
@given(rule_lists, st.lists(events, min_size=1, max_size=5))
def test_indexed_matching_equals_a_linear_scan(
    rules: tuple[Rule, ...], sample: list[dict[str, Any]]
) -> None:
    ruleset = build_ruleset(list(rules), ["r.yaml"])
    for event in sample:
        assert [r.id for r in match_rules(ruleset, event)] == naive(rules, event)
