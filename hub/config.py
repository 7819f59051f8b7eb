"""switchboard.yaml → JSON Schema → semantic checks → frozen, typed Settings.

Environment variables are read here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from connectors.base import Destination
from hub.errors import ConfigError, ConfigErrors
from hub.plugins import Plugins
from hub.secrets import Secret, is_secret_ref, read_secret_env, resolve_secret_ref
from hub.validation import load_schema, schema_errors
from hub.yamldoc import YamlDocument, load_yaml_file, load_yaml_text

DEFAULT_MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = DEFAULT_MAX_BODY
    public_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    threads: int = 4
    lease_seconds: float = 60.0
    max_attempts: int = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSettings:
    name: str
    secret: Secret | None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the hub needs to start, validated."""

    base_dir: Path
    server: ServerSettings = field(default_factory=ServerSettings)
    database_url: str = "sqlite:///var/switchboard.db"
    broker_url: str = "embedded"
    broker_namespace: str = "switchboard"
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    rules_path: Path = Path("rules")
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    destinations: Mapping[str, Destination] = field(default_factory=dict)

    @property
    def is_embedded(self) -> bool:
        return self.broker_url == "embedded"

    def secret_values(self) -> frozenset[str]:
        """Every secret in use, so the log masker can hide it wherever it appears."""
        values = {s.secret.reveal() for s in self.sources.values() if s.secret}
        for dest in self.destinations.values():
            values |= {v.reveal() for v in dest.options.values() if isinstance(v, Secret)}
        return frozenset(values)


def load_settings(path: Path, *, environ: Mapping[str, str], plugins: Plugins) -> Settings:
    """Load a config file; every problem is reported at once as ConfigErrors."""
    return settings_from_document(
        load_yaml_file(path), environ=environ, plugins=plugins, base_dir=path.resolve().parent
    )


def load_settings_text(
    text: str,
    *,
    environ: Mapping[str, str],
    plugins: Plugins,
    base_dir: Path,
    file: str = "switchboard.yaml",
) -> Settings:
    return settings_from_document(
        load_yaml_text(text, file), environ=environ, plugins=plugins, base_dir=base_dir
    )


def settings_from_document(
    doc: YamlDocument, *, environ: Mapping[str, str], plugins: Plugins, base_dir: Path
) -> Settings:
    data = doc.data if doc.data is not None else {}
    doc = YamlDocument(file=doc.file, data=data, marks=doc.marks)
    errors = schema_errors(doc, load_schema("config.schema.json"))
    if errors:
        raise ConfigErrors(errors)
    sources = _sources(doc, environ=environ, plugins=plugins, base_dir=base_dir)
    destinations = _destinations(doc, environ=environ, plugins=plugins, base_dir=base_dir)
    server = data.get("server", {})
    worker = data.get("worker", {})
    broker = data.get("broker", {})
    return Settings(
        base_dir=base_dir,
        server=ServerSettings(
            host=server.get("host", "127.0.0.1"),
            port=int(server.get("port", 8000)),
            max_body_bytes=int(server.get("max_body_bytes", DEFAULT_MAX_BODY)),
            public_url=server.get("public_url"),
        ),
        database_url=environ.get("SWITCHBOARD_DATABASE_URL")
        or _sqlite_relative(
            data.get("store", {}).get("url", "sqlite:///var/switchboard.db"), base_dir
        ),
        broker_url=environ.get("SWITCHBOARD_REDIS_URL") or broker.get("url", "embedded"),
        broker_namespace=broker.get("namespace", "switchboard"),
        worker=WorkerSettings(
            threads=int(worker.get("threads", 4)),
            lease_seconds=float(worker.get("lease_seconds", 60)),
            max_attempts=int(worker.get("max_attempts", 8)),
        ),
        rules_path=base_dir / data.get("rules", {}).get("path", "rules"),
        sources=MappingProxyType(sources),
        destinations=MappingProxyType(destinations),
    )


def _sqlite_relative(url: str, base_dir: Path) -> str:
    """Relative SQLite paths are relative to the config file, not the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str(base_dir / url[len(prefix) :])
    return url


def _sources(
    doc: YamlDocument, *, environ: Mapping[str, str], plugins: Plugins, base_dir: Path
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
    doc: YamlDocument, *, environ: Mapping[str, str], plugins: Plugins, base_dir: Path
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
        options = {k: v for k, v in raw.items() if k != "connector"}
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
