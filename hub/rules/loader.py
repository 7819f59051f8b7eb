"""Rule files → JSON Schema → semantic checks → a frozen, indexed RuleSet.

Every problem in every file is collected and reported at once as `file:line:col`;
problems that do not stop a rule from working (it can never match any event an
installed source emits) are returned as warnings.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Required, TypedDict, Unpack

from jsonschema.exceptions import ValidationError

from connectors.base import Connector, Destination
from hub.config.people import Directory
from hub.errors import ConfigError, ConfigErrors, Location, RuleError
from hub.rules.checks import RuleChecker
from hub.rules.misplaced import Misplaced, find_misplaced
from hub.rules.model import (
    GLOB_CHARS,
    Rule,
    RuleSet,
    build_ruleset,
)
from hub.rules.templates import TemplateEngine
from hub.validation import Explained, load_schema, schema_errors
from hub.yamldoc import PathKey, YamlDocument, load_yaml_file

RULE_FILE_SUFFIXES = (".yaml", ".yml")
#: Event types emitted by the hub itself, whatever sources are installed.
BUILTIN_EVENT_TYPES = ("schedule.*", "command.*")


@dataclass(frozen=True, slots=True)
class LoadResult:
    ruleset: RuleSet
    warnings: list[ConfigError] = field(default_factory=list)
    documents: list[YamlDocument] = field(default_factory=list)


def rule_files(path: Path) -> list[Path]:
    """A file, or the rule files of a directory in name order."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise RuleError(
            f"rules path {path} does not exist",
            hint="set rules.path in switchboard.yaml to a directory of .yaml files",
        )
    return sorted(p for p in path.iterdir() if p.suffix in RULE_FILE_SUFFIXES and p.is_file())


class RuleInputs(TypedDict, total=False):
    """What rule files are checked against, besides their folder (`load_rules_checked`)."""

    connectors: Required[Mapping[str, type[Connector]]]
    destinations: Required[Mapping[str, Destination]]
    engine: Required[TemplateEngine]
    display_root: Path | None
    known_event_types: Iterable[str] | None
    people: Directory | None


def load_ruleset(path: Path, **inputs: Unpack[RuleInputs]) -> RuleSet:
    """Load and check all rule files under `path`; raise ConfigErrors listing every problem."""
    return load_rules_checked(path, **inputs).ruleset


def load_rules_checked(
    path: Path,
    *,
    connectors: Mapping[str, type[Connector]],
    destinations: Mapping[str, Destination],
    engine: TemplateEngine,
    display_root: Path | None = None,
    known_event_types: Iterable[str] | None = None,
    people: Directory | None = None,
) -> LoadResult:
    """Like `load_ruleset`, also returning warnings and the parsed documents."""
    files = rule_files(path)
    errors: list[ConfigError] = []
    docs: list[YamlDocument] = []
    for file in files:
        try:
            doc = load_yaml_file(file, _display(file, display_root))
        except ConfigError as exc:
            errors.append(exc)
            continue
        schema = load_schema("rules.schema.json")
        misplaced = find_misplaced(doc, schema, connectors)
        file_errors = [m.error for m in misplaced] + schema_errors(
            doc, schema, explained=_explained_by(misplaced)
        )
        if file_errors:
            errors += file_errors
        else:
            docs.append(doc)
    templates = _templates(docs, errors)
    checker = RuleChecker(connectors, destinations, engine, templates, people or Directory())
    rules: list[Rule] = []
    where: dict[str, tuple[YamlDocument, PathKey]] = {}
    seen: dict[str, Location] = {}
    for doc in docs:
        for index, raw in enumerate(doc.data.get("rules") or []):
            rule = checker.rule(doc, ("rules", index), raw)
            if rule is None:
                continue
            if rule.id in seen:
                checker.errors.append(
                    RuleError(
                        f"duplicate rule id '{rule.id}' (first defined at {seen[rule.id]})",
                        location=doc.locate(("rules", index, "id")),
                        hint="rule ids must be unique across all rule files",
                    )
                )
                continue
            seen[rule.id] = rule.location
            where[rule.id] = (doc, ("rules", index, "on"))
            rules.append(rule)
    errors += checker.errors
    if errors:
        raise ConfigErrors(errors)
    warnings = []
    if known_event_types is not None:
        warnings = _unreachable(rules, where, [*known_event_types, *BUILTIN_EVENT_TYPES])
    files_shown = [_display(f, display_root) for f in files]
    ruleset = build_ruleset(rules, files_shown, tuple(w.render() for w in warnings))
    return LoadResult(ruleset, warnings, docs)


def _explained_by(misplaced: list[Misplaced]) -> Explained:
    """Schema errors that moving the misplaced keys makes go away: not said twice."""
    paths = {path for m in misplaced for path in m.explains}
    moved = {(m.parent, m.key) for m in misplaced}

    def explained(path: PathKey, err: ValidationError) -> bool:
        if path not in paths:
            return False
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = err.schema.get("properties", {}) if isinstance(err.schema, dict) else {}
            return all((path, k) in moved for k in err.instance if k not in allowed)
        return True

    return explained


def _display(file: Path, root: Path | None) -> str:
    if root is not None:
        try:
            return str(file.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(file)


def _templates(docs: list[YamlDocument], errors: list[ConfigError]) -> dict[str, Any]:
    """`templates:` of all files in one namespace; a name defined twice is an error."""
    found: dict[str, Any] = {}
    where: dict[str, Location] = {}
    for doc in docs:
        for name, params in (doc.data.get("templates") or {}).items():
            loc = doc.locate(("templates", name))
            if name in found:
                errors.append(
                    RuleError(
                        f"template '{name}' is defined twice (first at {where[name]})", location=loc
                    )
                )
                continue
            found[name], where[name] = params, loc
    return found


def _overlaps(pattern: str, known: str) -> bool:
    """Can some event type match both globs? Compared on their literal prefixes."""

    def prefix(text: str) -> str:
        cut = min((text.index(c) for c in GLOB_CHARS if c in text), default=len(text))
        return text[:cut]

    a, b = prefix(pattern), prefix(known)
    if a == pattern and b == known:
        return a == b
    if a == pattern:
        return fnmatchcase(pattern, known)
    if b == known:
        return fnmatchcase(known, pattern)
    return a.startswith(b) or b.startswith(a)


def _unreachable(
    rules: list[Rule], where: Mapping[str, tuple[YamlDocument, PathKey]], known: list[str]
) -> list[ConfigError]:
    """A warning for each `on:` pattern that no installed source can emit (a typo fires
    never, silently), with the closest event types a source does emit."""
    warnings: list[ConfigError] = []
    for rule in rules:
        if rule.schedule is not None:
            continue
        doc, at = where[rule.id]
        for index, pattern in enumerate(rule.on):
            if any(_overlaps(pattern, k) for k in known):
                continue
            path = (*at, index) if isinstance(doc.data["rules"][at[1]]["on"], list) else at
            loc_path = (*path, "<value>") if (*path, "<value>") in doc.marks else path
            close = _closest(pattern, known)
            families = sorted({k.split(".", 1)[0] + ".*" for k in known})
            warnings.append(
                RuleError(
                    f"rule '{rule.id}' never fires on {pattern!r}: no installed source "
                    "emits that event type",
                    location=doc.locate(loc_path),
                    hint=f"did you mean {' or '.join(repr(c) for c in close)}?"
                    if close
                    else f"installed sources emit event types under {', '.join(families)}",
                )
            )
    return warnings


def _closest(pattern: str, known: list[str]) -> list[str]:
    """The known event types nearest to a mistyped one: the best and any as good.

    A glob is compared with globs (`notoin.page.*` → `notion.page.*`).
    """
    candidates = set(known)
    if GLOB_CHARS & set(pattern):
        candidates |= {k.rsplit(".", 1)[0] + ".*" for k in known if "." in k}
    scored = sorted(
        ((difflib.SequenceMatcher(None, pattern, k).ratio(), k) for k in candidates),
        reverse=True,
    )
    if not scored or scored[0][0] < 0.75:
        return []
    return [k for score, k in scored[:3] if score >= scored[0][0] - 0.02]
