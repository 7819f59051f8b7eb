"""switchboard.yaml → JSON Schema → semantic checks → frozen, typed Settings.

Environment variables are read here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from cryptography.fernet import Fernet

from connectors.base import Destination, parse_duration
from hub.auth.proxies import Network, parse_proxies
from hub.auth.settings import AdminSettings, admin_settings
from hub.config.categories import CategorySettings, category_settings, load_examples
from hub.config.people import Directory, directory_from_config
from hub.config.plugins import (
    DeliveryPolicy,
    SourceSettings,
    _destinations,
    _policies,
    _sources,
    note_missing,
)
from hub.errors import ConfigError, ConfigErrors
from hub.plugins import Plugins
from hub.secrets import Secret, resolve_secret_ref
from hub.validation import load_schema, schema_errors
from hub.yamldoc import YamlDocument, load_yaml_file, load_yaml_text

DEFAULT_MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = DEFAULT_MAX_BODY
    public_url: str | None = None
    #: Proxies whose X-Forwarded-For is believed (hub/auth/proxies.py); none by default.
    trusted_proxies: tuple[Network, ...] = ()
    #: Where ingress's group commit runs: "thread" (a thread of its own) or "loop" (on the
    #: event loop, no thread hop; blocks the loop while SQLite's lock is held elsewhere).
    group_commit: str = "thread"


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    threads: int = 4
    lease_seconds: float = 60.0
    max_attempts: int = 8
    http_timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BackupSettings:
    """The `backup:` section: scheduled backups taken by the scheduler's upkeep."""

    path: Path
    every_s: float = 24 * 3600.0
    keep: int = 7


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the hub needs to start, validated."""

    base_dir: Path
    server: ServerSettings = field(default_factory=ServerSettings)
    database_url: str = "sqlite:///var/switchboard.db"
    broker_url: str = "embedded"
    broker_namespace: str = "switchboard"
    #: Redis for the rate-limit and breaker state all processes share; None: the broker's
    #: own Redis (in-process state for the embedded broker and for RabbitMQ).
    limits_url: str | None = None
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    rules_path: Path = Path("rules")
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    destinations: Mapping[str, Destination] = field(default_factory=dict)
    #: Per destination name; see `policy_for` for destinations without an entry.
    policies: Mapping[str, DeliveryPolicy] = field(default_factory=dict)
    #: The `admin:` section; None serves neither the API nor the dashboard.
    admin: AdminSettings | None = None
    #: `backup:`; None takes no scheduled backups (`switchboard db backup` still works).
    backup: BackupSettings | None = None
    #: `store.encryption_keys`: the first encrypts stored tokens, all decrypt; () stores
    #: them in plain text (hub/store/crypto.py).
    encryption_keys: tuple[Secret, ...] = ()
    #: `people:` and `roles:`: who rules can address (hub/config/people.py).
    people: Directory = field(default_factory=Directory)
    #: Secrets this config names but this machine lacks, as `where (reference)`; only ever
    #: non-empty when loaded with `require_secrets=False` (the rules tools).
    missing_secrets: tuple[str, ...] = ()
    #: `categories:` and their examples (hub/config/categories.py); the composition trains
    #: the classifier that gives each event its `data.category` (hub/rules/categories.py).
    categories: CategorySettings = field(default_factory=CategorySettings)

    def policy_for(
        self, destination: str | None, default_limits: tuple[tuple[int, float], ...] = ()
    ) -> DeliveryPolicy:
        policy = self.policies.get(destination) if destination else None
        if policy is not None:
            return policy
        return DeliveryPolicy(max_attempts=self.worker.max_attempts, limits=default_limits)

    @property
    def is_embedded(self) -> bool:
        return self.broker_url == "embedded"

    def secret_values(self) -> frozenset[str]:
        """Every secret in use, so the log masker can hide it wherever it appears."""
        values = {s.secret.reveal() for s in self.sources.values() if s.secret}
        for dest in self.destinations.values():
            values |= {v.reveal() for v in dest.options.values() if isinstance(v, Secret)}
        if self.admin is not None:
            values |= self.admin.secret_values()
        values |= {key.reveal() for key in self.encryption_keys}
        return frozenset(values)


def load_settings(
    path: Path, *, environ: Mapping[str, str], plugins: Plugins, require_secrets: bool = True
) -> Settings:
    """Load a config file; every problem is reported at once as ConfigErrors.

    `require_secrets=False` is for tools that only need names and types (rules check and
    test, simulate): a secret that is not set is then listed in `missing_secrets` instead
    of being an error. Every other mistake in the file is still one.
    """
    return settings_from_document(
        load_yaml_file(path),
        environ=environ,
        plugins=plugins,
        base_dir=path.resolve().parent,
        require_secrets=require_secrets,
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
    doc: YamlDocument,
    *,
    environ: Mapping[str, str],
    plugins: Plugins,
    base_dir: Path,
    require_secrets: bool = True,
) -> Settings:
    data = doc.data if doc.data is not None else {}
    doc = YamlDocument(file=doc.file, data=data, marks=doc.marks)
    errors = schema_errors(doc, load_schema("config.schema.json"))
    if errors:
        raise ConfigErrors(errors)
    missing: list[str] | None = None if require_secrets else []
    sources = _sources(doc, environ=environ, plugins=plugins, base_dir=base_dir, missing=missing)
    destinations = _destinations(
        doc, environ=environ, plugins=plugins, base_dir=base_dir, missing=missing
    )
    max_attempts = int(data.get("worker", {}).get("max_attempts", 8))
    policies = _policies(doc, plugins, max_attempts)
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
            trusted_proxies=_trusted_proxies(doc, server.get("trusted_proxies") or []),
            group_commit=str(server.get("group_commit", "thread")),
        ),
        database_url=environ.get("SWITCHBOARD_DATABASE_URL")
        or _sqlite_relative(
            data.get("store", {}).get("url", "sqlite:///var/switchboard.db"), base_dir
        ),
        broker_url=environ.get("SWITCHBOARD_REDIS_URL") or broker.get("url", "embedded"),
        broker_namespace=broker.get("namespace", "switchboard"),
        limits_url=environ.get("SWITCHBOARD_LIMITS_URL") or broker.get("limits_url"),
        worker=WorkerSettings(
            threads=int(worker.get("threads", 4)),
            lease_seconds=float(worker.get("lease_seconds", 60)),
            max_attempts=int(worker.get("max_attempts", 8)),
            http_timeout_seconds=float(worker.get("http_timeout_seconds", 10)),
        ),
        rules_path=base_dir / data.get("rules", {}).get("path", "rules"),
        sources=MappingProxyType(sources),
        destinations=MappingProxyType(destinations),
        policies=MappingProxyType(policies),
        admin=admin_settings(doc, environ=environ, base_dir=base_dir, missing=missing),
        backup=_backup(doc, base_dir),
        encryption_keys=_encryption_keys(doc, environ=environ, base_dir=base_dir, missing=missing),
        people=_people(doc),
        missing_secrets=tuple(missing or ()),
        categories=_categories(doc, base_dir),
    )


def _categories(doc: YamlDocument, base_dir: Path) -> CategorySettings:
    """`categories:`, with `categories_examples:` to train on too (a team's closed tasks, JSON
    lines, relative to the config file), read once here."""
    examples: list[tuple[str, str]] = []
    if (name := doc.data.get("categories_examples")) is not None:
        path = base_dir / str(name)
        try:
            examples = load_examples(path)
        except OSError as exc:
            raise ConfigError(
                f"categories_examples: cannot read {path}: {exc.strerror}",
                location=doc.locate(("categories_examples",)),
                hint="a JSON-lines file of {category, title, description}, beside the config",
            ) from exc
        except ValueError as exc:
            raise ConfigError(str(exc), location=doc.locate(("categories_examples",))) from exc
    try:
        return category_settings(doc.data.get("categories") or [], examples=examples)
    except ValueError as exc:
        raise ConfigError(str(exc), location=doc.locate(("categories",))) from exc


def _people(doc: YamlDocument) -> Directory:
    directory, problems = directory_from_config(doc.data.get("people"), doc.data.get("roles"))
    if problems:
        raise ConfigErrors(
            [
                ConfigError(
                    problem,
                    location=doc.locate(tuple(problem.split(":", 1)[0].split(".")[:3])),
                    hint="each id belongs to one person; roles must be listed under roles:",
                )
                for problem in problems
            ]
        )
    return directory


def _backup(doc: YamlDocument, base_dir: Path) -> BackupSettings | None:
    raw = doc.data.get("backup")
    if raw is None:
        return None
    try:
        every = parse_duration(raw.get("every", "1d")).total_seconds()
    except ValueError as exc:
        raise ConfigError(
            f"backup.every: {exc}", location=doc.locate(("backup", "every")), hint="e.g. 1d or 6h"
        ) from exc
    return BackupSettings(path=base_dir / raw["path"], every_s=every, keep=int(raw.get("keep", 7)))


def _encryption_keys(
    doc: YamlDocument, *, environ: Mapping[str, str], base_dir: Path, missing: list[str] | None
) -> tuple[Secret, ...]:
    keys: list[Secret] = []
    for index, ref in enumerate(doc.data.get("store", {}).get("encryption_keys", [])):
        where = f"store.encryption_keys[{index}]"
        try:
            key = resolve_secret_ref(ref, environ=environ, base_dir=base_dir, where=where)
        except ConfigError as exc:
            if note_missing(exc, where, missing):
                continue
            raise
        if key is None:
            continue
        try:
            check_key(key)
        except ValueError as exc:
            raise ConfigError(
                f"{where}: {exc}",
                location=doc.locate(("store", "encryption_keys", index)),
                hint="make one with `switchboard secrets new-key`",
            ) from exc
        keys.append(key)
    return tuple(keys)


def check_key(key: Secret) -> None:
    """Raise ValueError unless `key` is a Fernet key (32 url-safe base64-encoded bytes).

    Checked here, at load time, so a bad key is a located config error rather than a
    failure when hub/store/crypto.py first seals a token."""
    try:
        Fernet(key.reveal().encode())
    except (ValueError, TypeError):
        raise ValueError("not a Fernet key (32 bytes, url-safe base64: 44 characters)") from None


def _trusted_proxies(doc: YamlDocument, values: list[str]) -> tuple[Network, ...]:
    try:
        return parse_proxies(values)
    except ValueError as exc:
        raise ConfigError(
            f"server.trusted_proxies: {exc}",
            location=doc.locate(("server", "trusted_proxies")),
            hint="list only the reverse proxies in front of the hub; leave it out if none",
        ) from exc


def _sqlite_relative(url: str, base_dir: Path) -> str:
    """Relative SQLite paths are relative to the config file, not the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str(base_dir / url[len(prefix) :])
    return url


__all__ = [
    "DEFAULT_MAX_BODY",
    "BackupSettings",
    "DeliveryPolicy",
    "ServerSettings",
    "Settings",
    "SourceSettings",
    "WorkerSettings",
    "check_key",
    "load_settings",
    "load_settings_text",
    "note_missing",
    "settings_from_document",
]
