"""Rule files → JSON Schema → semantic checks → a frozen, indexed RuleSet.

Every problem in every file is collected and reported at once as `file:line:col`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connectors.base import Connector, Destination
from hub.errors import ConfigError, ConfigErrors, Location, RuleError
from hub.rules.conditions import Condition, compile_condition
from hub.rules.model import ActionSpec, Rule, RuleSet, build_ruleset
from hub.rules.templates import TemplateEngine, TemplateProblem
from hub.validation import load_schema, schema_errors
from hub.yamldoc import YamlDocument, load_yaml_file

RULE_FILE_SUFFIXES = (".yaml", ".yml")


def rule_files(path: Path) -> list[Path]:
    """A file, or the rule files of a directory in name order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise RuleError(f"rules path {path} does not exist",
                        hint="set rules.path in switchboard.yaml to a directory of .yaml files")
    return sorted(p for p in path.iterdir() if p.suffix in RULE_FILE_SUFFIXES and p.is_file())


def load_ruleset(
    path: Path,
    *,
    connectors: Mapping[str, type[Connector]],
    destinations: Mapping[str, Destination],
    engine: TemplateEngine,
    display_root: Path | None = None,
) -> RuleSet:
    """Load and check all rule files under `path`; raise ConfigErrors listing every problem."""
    files = rule_files(path)
    errors: list[ConfigError] = []
    rules: list[Rule] = []
    seen: dict[str, Location] = {}
    for file in files:
        display = _display(file, display_root)
        try:
            doc = load_yaml_file(file, display)
        except ConfigError as exc:
            errors.append(exc)
            continue
        file_errors = schema_errors(doc, load_schema("rules.schema.json"))
        if file_errors:
            errors += file_errors
            continue
        for index, raw in enumerate(doc.data["rules"]):
            rule, problems = _compile_rule(doc, index, raw, connectors, destinations, engine)
            errors += problems
            if rule is None:
                continue
            if rule.id in seen:
                errors.append(RuleError(
                    f"duplicate rule id '{rule.id}' (first defined at {seen[rule.id]})",
                    location=doc.locate(("rules", index, "id")),
                    hint="rule ids must be unique across all rule files",
                ))
                continue
            seen[rule.id] = rule.location
            rules.append(rule)
    if errors:
        raise ConfigErrors(errors)
    return build_ruleset(rules, [_display(f, display_root) for f in files])


def _display(file: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(file.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(file)


def _compile_rule(
    doc: YamlDocument,
    index: int,
    raw: dict[str, Any],
    connectors: Mapping[str, type[Connector]],
    destinations: Mapping[str, Destination],
    engine: TemplateEngine,
) -> tuple[Rule | None, list[ConfigError]]:
    at = ("rules", index)
    errors: list[ConfigError] = []
    where: list[Condition] = []
    for path, spec in (raw.get("where") or {}).items():
        try:
            where.append(compile_condition(path, spec))
        except ValueError as exc:
            errors.append(RuleError(f"where '{path}': {exc}",
                                    location=doc.locate((*at, "where", path))))
    when = None
    if "when" in raw:
        try:
            when = engine.compile_expression(raw["when"])
        except TemplateProblem as exc:
            errors.append(RuleError(f"when: {exc.message}", location=doc.locate((*at, "when"))))
    actions: list[ActionSpec] = []
    for action_index, action in enumerate(raw["actions"]):
        spec, problems = _compile_action(doc, (*at, "actions", action_index), action_index,
                                         action, connectors, destinations, engine)
        errors += problems
        if spec is not None:
            actions.append(spec)
    if errors:
        return None, errors
    on = raw["on"]
    return Rule(
        id=raw["id"],
        description=raw.get("description", ""),
        on=tuple(on) if isinstance(on, list) else (on,),
        where=tuple(where),
        when=when,
        actions=tuple(actions),
        location=doc.locate(at),
        stop=raw.get("continue", True) is False,
    ), []


def _compile_action(
    doc: YamlDocument,
    at: tuple[str | int, ...],
    action_index: int,
    action: dict[str, Any],
    connectors: Mapping[str, type[Connector]],
    destinations: Mapping[str, Destination],
    engine: TemplateEngine,
) -> tuple[ActionSpec | None, list[ConfigError]]:
    key, params = next(iter(action.items()))
    params = params or {}
    name, _, operation = key.partition(".")
    loc = doc.locate((*at, key))
    connector = connectors.get(name)
    if connector is None:
        return None, [RuleError(f"unknown connector '{name}'", location=loc,
                                hint=f"installed connectors: {', '.join(sorted(connectors))}")]
    errors: list[ConfigError] = list(
        schema_errors(doc, connector.params_schema, at=(*at, key), value=params)
    )
    destination = None
    if connector.destination_param is not None:
        destination = params.get(connector.destination_param)
        dest = destinations.get(destination) if isinstance(destination, str) else None
        if destination is not None and dest is None:
            known = sorted(n for n, d in destinations.items() if d.connector == name)
            errors.append(RuleError(
                f"destination '{destination}' is not defined",
                location=doc.locate((*at, key, connector.destination_param)),
                hint=f"known {name} destinations: {', '.join(known) or 'none'}"
                     " (define it under destinations: in switchboard.yaml)",
            ))
        elif dest is not None and dest.connector != name:
            errors.append(RuleError(
                f"destination '{destination}' is a {dest.connector} destination, not {name}",
                location=doc.locate((*at, key, connector.destination_param)),
            ))
    try:
        compiled = engine.compile_value(params)
    except TemplateProblem as exc:
        errors.append(RuleError(exc.message, location=loc))
        return None, errors
    if errors:
        return None, errors
    return ActionSpec(
        index=action_index,
        connector=name,
        operation=operation or None,
        destination=destination if isinstance(destination, str) else None,
        params=compiled,
        location=loc,
    ), []
