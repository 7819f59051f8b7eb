"""JSON Schema validation that reports every error with file:line:col."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from hub.errors import ConfigError
from hub.yamldoc import PathKey, YamlDocument

#: `hub/schemas` links to the repository's `schemas/` and ships in the wheel as package
#: data, so an installed hub (not only a checkout) finds its schemas.
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load and check one of the project's schemas from `schemas/`."""
    schema: dict[str, Any] = json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return schema


#: `(path, error) -> True` for a violation already explained better (a misplaced key).
Explained = Callable[[PathKey, ValidationError], bool]


def schema_errors(
    doc: YamlDocument,
    schema: dict[str, Any],
    *,
    at: PathKey = (),
    value: Any = None,
    explained: Explained | None = None,
) -> list[ConfigError]:
    """All schema violations of `value` (default: the whole document), located in `doc`."""
    target = doc.data if value is None and not at else value
    validator = _validator(schema)
    return [
        _to_config_error(doc, at, err)
        for err in _leaves(validator.iter_errors(target))
        if explained is None or not explained((*at, *err.absolute_path), err)
    ]


_VALIDATORS: dict[int, tuple[dict[str, Any], Draft202012Validator]] = {}


def _validator(schema: dict[str, Any]) -> Draft202012Validator:
    """One compiled validator per schema object (plugin schemas are module constants)."""
    cached = _VALIDATORS.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, Draft202012Validator(schema))
        _VALIDATORS[id(schema)] = cached
    return cached[1]


def _leaves(errors: Iterable[ValidationError]) -> list[ValidationError]:
    """Prefer the most specific sub-error of oneOf/anyOf failures."""
    out: list[ValidationError] = []
    for err in errors:
        if err.context:
            best = max(err.context, key=lambda e: len(e.absolute_path))
            if len(best.absolute_path) > len(err.absolute_path):
                out.append(best)
                continue
        out.append(err)
    return out


def _to_config_error(doc: YamlDocument, at: PathKey, err: ValidationError) -> ConfigError:
    path: PathKey = (*at, *err.absolute_path)
    dotted = ".".join(str(p) for p in path) or "(top level)"
    if err.validator == "additionalProperties":
        schema = err.schema if isinstance(err.schema, dict) else {}
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
        key = extra[0] if extra else "?"
        return ConfigError(
            f"unknown key '{key}' in {dotted}",
            location=doc.locate((*path, key)),
            hint=f"allowed keys: {', '.join(allowed)}" if allowed else "",
        )
    if err.validator == "required":
        return ConfigError(f"{dotted}: {err.message}", location=doc.locate(path))
    loc_path: PathKey = (*path, "<value>") if (*path, "<value>") in doc.marks else path
    return ConfigError(f"{dotted}: {err.message}", location=doc.locate(loc_path))
