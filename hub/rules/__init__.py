"""Rules: YAML files → a frozen, indexed RuleSet; pure matching and rendering."""

from __future__ import annotations

from hub.rules.loader import load_ruleset
from hub.rules.matcher import match_rules, render_actions
from hub.rules.model import ActionSpec, Rule, RuleSet, RuleSetRef

__all__ = [
    "ActionSpec",
    "Rule",
    "RuleSet",
    "RuleSetRef",
    "load_ruleset",
    "match_rules",
    "render_actions",
]
