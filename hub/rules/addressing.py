"""Load-time checks of an action's `for_each:`, `as:` and `to:` (people and roles).

    - discord.send:
        for_each: "{{ event.data.fields.Assignee }}"   # one delivery per assignee
        as: assignee                                    # the item's name (default: item)
        to: {person: "{{ assignee }}"}                  # or {role: project-manager}
        channel: team-bot
        content: "{{ person.name }}, {{ event.data.entity.title }} is yours"

A literal role or person that the people directory does not know is a load error
(`rules check`); a templated one that renders to someone unknown is a skipped delivery.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.base import Connector
from hub.config.people import Directory
from hub.errors import ConfigError, RuleError
from hub.rules.fanout import is_addressing
from hub.rules.templates import EXPR_KEY, CompiledValue, TemplateEngine, TemplateProblem
from hub.yamldoc import PathKey, YamlDocument

__all__ = ["Addressing", "Checked", "split_addressing"]

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
_RESERVED = frozenset({"event", "rule", "events", "group", "query", "people", "person"})
#: What a connector needs to address a person, when it declares none itself.
_PLACEHOLDER = {"email": "someone@example.com"}


@dataclass(frozen=True, slots=True)
class Checked:
    for_each: CompiledValue | None = None
    for_each_as: str = "item"
    to: CompiledValue | None = None
    address: tuple[str, str] | None = None
    #: Template names the action's params may use besides the rule's.
    names: frozenset[str] = frozenset({"people"})

    def for_schema(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Params as the connector's schema sees them: the address `to:` fills in."""
        if self.address is None or self.address[0] in params:
            return dict(params)
        return {**params, self.address[0]: _PLACEHOLDER.get(self.address[1], "0")}


@dataclass(frozen=True, slots=True)
class Addressing:
    raw: Mapping[str, Any] = field(default_factory=dict)

    def check(
        self,
        doc: YamlDocument,
        at: PathKey,
        connector_name: str,
        connector: type[Connector],
        engine: TemplateEngine,
        people: Directory,
        names: frozenset[str],
        errors: list[ConfigError],
    ) -> Checked:
        def error(key: str, message: str, hint: str = "") -> None:
            errors.append(RuleError(message, location=doc.locate((*at, key)), hint=hint))

        allowed = names | {"people"}
        for_each = None
        as_name = str(self.raw.get("as", "item"))
        if "as" in self.raw and "for_each" not in self.raw:
            error("as", "`as:` names the item of `for_each:`, and there is none")
        if not _IDENTIFIER.match(as_name) or as_name in _RESERVED:
            error("as", f"`as: {as_name}` cannot name the item", hint="e.g. as: assignee")
        if "for_each" in self.raw:
            text = self.raw["for_each"]
            try:
                for_each = engine.compile_value({EXPR_KEY: str(text)})
            except TemplateProblem as exc:
                error("for_each", f"for_each: {exc.message}")
            else:
                if undefined := for_each.names - allowed:
                    error(
                        "for_each",
                        f"undefined name {', '.join(sorted(undefined))} in for_each",
                        hint=f"templates can use: {', '.join(sorted(allowed))}",
                    )
            allowed = allowed | {as_name}
        to = None
        address: tuple[str, str] | None = None
        if "to" in self.raw:
            address = connector.person_address
            if address is None:
                error(
                    "to",
                    f"the {connector_name} connector cannot send to a person",
                    hint="people can be addressed by discord, slack and email actions",
                )
            to = self._to(doc, at, engine, people, allowed, errors)
            allowed = allowed | {"person"}
        return Checked(for_each, as_name, to, address, frozenset(allowed - names))

    def _to(
        self,
        doc: YamlDocument,
        at: PathKey,
        engine: TemplateEngine,
        people: Directory,
        allowed: frozenset[str],
        errors: list[ConfigError],
    ) -> CompiledValue | None:
        raw = dict(self.raw["to"])
        where = doc.locate((*at, "to"))
        if len(raw) != 1:
            errors.append(
                RuleError(
                    "`to:` takes one of person: or role:",
                    location=where,
                    hint='e.g. to: {person: "{{ assignee }}"} or to: {role: project-manager}',
                )
            )
            return None
        kind, value = next(iter(raw.items()))
        literal = isinstance(value, str) and "{{" not in value and "{%" not in value
        if kind == "role" and literal and value not in people.roles:
            errors.append(
                RuleError(
                    f"unknown role '{value}'",
                    location=doc.locate((*at, "to", "role")),
                    hint=f"roles: {', '.join(people.roles)} (set roles: in switchboard.yaml)",
                )
            )
        if kind == "person" and literal and people.find(value) is None:
            known = ", ".join(p.key for p in people.people) or "none"
            errors.append(
                RuleError(
                    f"no person '{value}' in people:",
                    location=doc.locate((*at, "to", "person")),
                    hint=f"people: {known} (add them under people: in switchboard.yaml)",
                )
            )
        try:
            compiled = engine.compile_value(raw)
        except TemplateProblem as exc:
            errors.append(RuleError(f"to: {exc.message}", location=where))
            return None
        if undefined := compiled.names - allowed:
            errors.append(
                RuleError(
                    f"undefined name {', '.join(sorted(undefined))} in to:",
                    location=where,
                    hint=f"templates can use: {', '.join(sorted(allowed))}",
                )
            )
        return compiled


def split_addressing(params: Mapping[str, Any]) -> tuple[dict[str, Any], Addressing]:
    """The connector's own params, and the `for_each` / `as` / `to` the hub handles."""
    own = dict(params)
    taken: dict[str, Any] = {k: own.pop(k) for k in ("for_each", "as") if k in own}
    if is_addressing(own.get("to")):
        taken["to"] = own.pop("to")
    return own, Addressing(taken)
