"""The composition root's product: every long-lived dependency, built once and passed in."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.clock import Clock, SystemClock
from hub.config import Settings
from hub.pipeline.queue import Queue, make_broker
from hub.pipeline.ratelimit import Breaker, Limiter, make_limits
from hub.plugins import Plugins
from hub.rules import RuleSetRef
from hub.rules.categories import Categories, train_categories
from hub.rules.loader import LoadResult, load_rules_checked
from hub.rules.templates import TemplateEngine
from hub.sources.base import Source
from hub.store import Store, open_store
from hub.store.crypto import TokenCipher


@dataclass(frozen=True, slots=True, kw_only=True)
class Runtime:
    """Shared by ingress, worker and CLI; nothing here is a module global."""

    settings: Settings
    plugins: Plugins
    store: Store
    queue: Queue
    clock: Clock
    sources: Mapping[str, Source]
    rules: RuleSetRef
    templates: TemplateEngine
    #: `categories:` with the classifier trained on them, once per process.
    categories: Categories
    limiter: Limiter
    breaker: Breaker
    rng: random.Random = field(default_factory=random.Random)

    def close(self) -> None:
        self.queue.close()
        self.store.close()


def load_rules(
    settings: Settings, plugins: Plugins, templates: TemplateEngine, path: Path | None = None
) -> LoadResult:
    """Load the rule files with everything the checks need; raises ConfigErrors."""
    return load_rules_checked(
        path or settings.rules_path,
        connectors=plugins.connectors,
        destinations=settings.destinations,
        engine=templates,
        display_root=Path.cwd(),
        known_event_types=[t for src in plugins.sources.values() for t in src.event_types],
        people=settings.people,
    )


#: Sources the hub feeds itself (cron ticks): enabled whenever installed, no config needed.
BUILT_IN_SOURCES = ("schedule",)


def _sources(settings: Settings, plugins: Plugins) -> dict[str, Source]:
    sources = {
        name: make_source(plugins.sources[name], source.options)
        for name, source in settings.sources.items()
    }
    for name in BUILT_IN_SOURCES:
        if name in plugins.sources:
            sources.setdefault(name, make_source(plugins.sources[name], {}))
    return sources


def make_source(cls: type[Source], options: Mapping[str, Any]) -> Source:
    """A source built from its validated options when it takes any (`from_options`)."""
    return cls.from_options(options)


def build_runtime(
    settings: Settings,
    plugins: Plugins,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
) -> Runtime:
    """Open the store and broker and load the rules; raises ConfigError/StoreError."""
    templates = TemplateEngine()
    ruleset = load_rules(settings, plugins, templates).ruleset
    store = open_store(settings.database_url)
    store.cipher = TokenCipher(settings.encryption_keys)
    broker = make_broker(settings.broker_url, namespace=settings.broker_namespace)
    clock = clock or SystemClock()
    limiter, breaker = make_limits(
        settings.broker_url,
        settings.broker_namespace,
        clock.monotonic,
        limits_url=settings.limits_url,
    )
    return Runtime(
        settings=settings,
        plugins=plugins,
        store=store,
        queue=Queue(broker),
        clock=clock,
        sources=_sources(settings, plugins),
        rules=RuleSetRef(ruleset),
        templates=templates,
        categories=train_categories(settings.categories),
        limiter=limiter,
        breaker=breaker,
        rng=rng or random.Random(),  # noqa: S311 - backoff jitter, not cryptography
    )
