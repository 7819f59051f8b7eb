"""The `sources:` and `destinations:` sections: each checked against its plugin's schema,
its secrets resolved, and each destination's delivery policy (retries, rate limits,
concurrency, breaker) read once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from connectors.base import Destination, parse_duration
from hub.errors import ConfigError, ConfigErrors
from hub.plugins import Plugins
from hub.secrets import (
    MissingSecret,
    Secret,
    is_secret_ref,
    read_secret_env,
    resolve_secret_ref,
)
from hub.validation import schema_errors
from hub.yamldoc import YamlDocument


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSettings:
    name: str
    secret: Secret | None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryPolicy:
    """How the engine treats one destination: retries, rate limits, concurrency, breaker."""

    max_attempts: int = 8
    max_age_s: float = 24 * 3600.0
    #: (count, per seconds) windows shared by all workers; () = unlimited.
    limits: tuple[tuple[int, float], ...] = ()
    concurrency: int = 4
    breaker_threshold: int = 5
    breaker_cooldown_s: float = 30.0


#: Destination keys the delivery engine reads; the rest belong to the connector.
ENGINE_KEYS = ("rate_limit", "retry", "concurrency", "breaker")


def note_missing(exc: ConfigError, where: str, missing: list[str] | None) -> bool:
    """True when `exc` is an unset secret and the caller tolerates those (noted in `missing`)."""
    if missing is None or not isinstance(exc, MissingSecret):
        return False
    missing.append(f"{where} ({exc.reference})")
    return True


def _sources(
    doc: YamlDocument,
    *,
    environ: Mapping[str, str],
    plugins: Plugins,
    base_dir: Path,
    missing: list[str] | None,
) -> dict[str, SourceSettings]:
    out: dict[str, SourceSettings] = {}
    errors: list[ConfigError] = []
    for name, raw in (doc.data.get("sources") or {}).items():
        raw = raw or {}
        if not raw.get("enabled", True):
            continue
        if name not in plugins.sources:
            errors.append(
                ConfigError(
                    f"unknown source '{name}'",
                    location=doc.locate(("sources", name)),
                    hint=f"installed sources: {', '.join(sorted(plugins.sources)) or 'none'}",
                )
            )
            continue
        options = {k: v for k, v in raw.items() if k not in ("secret", "enabled")}
        errors += schema_errors(
            doc, plugins.sources[name].settings_schema, at=("sources", name), value=options
        )
        # Secret references anywhere in the options (e.g. the Notion integration token,
        # per workspace) become Secret objects; the source never sees where they came from.
        options = _resolve_refs(
            options,
            ("sources", name),
            doc=doc,
            environ=environ,
            base_dir=base_dir,
            errors=errors,
            missing=missing,
        )
        try:
            if "secret" in raw:
                secret = resolve_secret_ref(
                    raw["secret"],
                    environ=environ,
                    base_dir=base_dir,
                    where=f"sources.{name}.secret",
                )
            else:
                secret = read_secret_env(
                    f"SWITCHBOARD_SECRET_{name.upper().replace('-', '_')}",
                    environ=environ,
                    base_dir=base_dir,
                    optional=False,
                )
        except ConfigError as exc:
            if note_missing(exc, f"sources.{name}.secret", missing):
                out[name] = SourceSettings(
                    name=name, secret=None, options=MappingProxyType(options)
                )
                continue
            errors.append(
                ConfigError(
                    f"sources.{name}: {exc.message}",
                    location=doc.locate(("sources", name)),
                    hint=exc.hint,
                )
            )
            continue
        out[name] = SourceSettings(name=name, secret=secret, options=MappingProxyType(options))
    if errors:
        raise ConfigErrors(errors)
    return out


def _destinations(
    doc: YamlDocument,
    *,
    environ: Mapping[str, str],
    plugins: Plugins,
    base_dir: Path,
    missing: list[str] | None,
) -> dict[str, Destination]:
    out: dict[str, Destination] = {}
    errors: list[ConfigError] = []
    for name, raw in (doc.data.get("destinations") or {}).items():
        connector = raw["connector"]
        at = ("destinations", name)
        if connector not in plugins.connectors:
            errors.append(
                ConfigError(
                    f"destination '{name}' uses unknown connector '{connector}'",
                    location=doc.locate((*at, "connector")),
                    hint=f"installed connectors: {', '.join(sorted(plugins.connectors))}",
                )
            )
            continue
        options = {k: v for k, v in raw.items() if k != "connector" and k not in ENGINE_KEYS}
        schema_problems = schema_errors(
            doc, plugins.connectors[connector].destination_schema, at=at, value=options
        )
        if schema_problems:
            errors += schema_problems
            continue
        resolved: dict[str, Any] = {}
        disabled: str | None = None
        for key, value in options.items():
            if not is_secret_ref(value):
                resolved[key] = value
                continue
            try:
                secret = resolve_secret_ref(
                    value, environ=environ, base_dir=base_dir, where=f"destinations.{name}.{key}"
                )
            except ConfigError as exc:
                if note_missing(exc, f"destinations.{name}.{key}", missing):
                    disabled = f"{key} is not set here"
                    resolved[key] = None
                    continue
                errors.append(
                    ConfigError(exc.message, location=doc.locate((*at, key)), hint=exc.hint)
                )
                continue
            if secret is None:
                ref = value.get("env") or value.get("file")
                disabled = f"{key} is not set ({ref})"
            resolved[key] = secret
        out[name] = Destination(
            name=name,
            connector=connector,
            options=MappingProxyType(resolved),
            disabled_reason=disabled,
        )
    if errors:
        raise ConfigErrors(errors)
    return out


def _resolve_refs(
    value: Any,
    at: tuple[str, ...],
    *,
    doc: YamlDocument,
    environ: Mapping[str, str],
    base_dir: Path,
    errors: list[ConfigError],
    missing: list[str] | None = None,
) -> Any:
    if is_secret_ref(value):
        try:
            return resolve_secret_ref(value, environ=environ, base_dir=base_dir, where=".".join(at))
        except ConfigError as exc:
            if not note_missing(exc, ".".join(at), missing):
                errors.append(ConfigError(exc.message, location=doc.locate(at)))
            return None
    if isinstance(value, Mapping):
        return {
            k: _resolve_refs(
                v,
                (*at, str(k)),
                doc=doc,
                environ=environ,
                base_dir=base_dir,
                errors=errors,
                missing=missing,
            )
            for k, v in value.items()
        }
    return value


def _policies(doc: YamlDocument, plugins: Plugins, max_attempts: int) -> dict[str, DeliveryPolicy]:
    """Delivery policy per destination: its own settings over the connector's defaults."""
    out: dict[str, DeliveryPolicy] = {}
    errors: list[ConfigError] = []
    for name, raw in (doc.data.get("destinations") or {}).items():
        at = ("destinations", name)
        connector = plugins.connectors.get(raw["connector"])
        limits: tuple[tuple[int, float], ...] = connector.rate_limits if connector else ()
        try:
            if "rate_limit" in raw:
                limits = tuple(_rate(text) for text in raw["rate_limit"])
            retry = raw.get("retry", {})
            breaker = raw.get("breaker", {})
            out[name] = DeliveryPolicy(
                max_attempts=int(retry.get("max_attempts", max_attempts)),
                max_age_s=parse_duration(retry.get("max_age", "24h")).total_seconds(),
                limits=limits,
                concurrency=int(raw.get("concurrency", 4)),
                breaker_threshold=int(breaker.get("threshold", 5)),
                breaker_cooldown_s=parse_duration(breaker.get("cooldown", "30s")).total_seconds(),
            )
        except ValueError as exc:
            errors.append(ConfigError(f"destinations.{name}: {exc}", location=doc.locate(at)))
    if errors:
        raise ConfigErrors(errors)
    return out


def _rate(text: str) -> tuple[int, float]:
    """`5/2s` → (5, 2.0)."""
    count, _, window = text.partition("/")
    seconds = parse_duration(window if window[0].isdigit() else "1" + window).total_seconds()
    if int(count) < 1 or seconds <= 0:
        raise ValueError(f"rate_limit '{text}' must be a positive count per a positive window")
    return int(count), seconds
