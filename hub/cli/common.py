"""What every command shares: the config loader, argument types, the clock."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from hub.config import Settings, load_settings
from hub.errors import ConfigError
from hub.plugins import Plugins, load_plugins

DEFAULT_CONFIG = "switchboard.yaml"


def _duration(text: str) -> str:
    """argparse type for durations (30s, 5m, 7d): a typo is a usage error, not a traceback."""
    from connectors.base import parse_duration

    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def existing_path(text: str) -> Path:
    """argparse type for a file or directory the command reads: a typo is a usage error."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or directory")
    return path


def _header(text: str) -> str:
    """argparse type for -H 'Name: value'."""
    name, colon, _ = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"'{text}' is not a header; write 'Name: value'")
    return text


def _settings(
    args: argparse.Namespace, *, require_secrets: bool = True
) -> tuple[Settings, Plugins]:
    """The config and plugins; without `require_secrets`, unset secrets are listed on
    stderr as what running the hub would need, not refused (the rules tools' mode)."""
    path = Path(args.config)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} not found",
            hint="copy switchboard.example.yaml to switchboard.yaml or pass --config",
        )
    plugins = load_plugins()
    settings = load_settings(
        path, environ=os.environ, plugins=plugins, require_secrets=require_secrets
    )
    if settings.missing_secrets:
        print(
            "note: secrets not set here (not needed to check rules; needed to run the hub): "
            + ", ".join(settings.missing_secrets),
            file=sys.stderr,
        )
    return settings, plugins


def time_now() -> float:
    from hub.clock import SystemClock

    return SystemClock().now().timestamp()


class Tools:
    """The CliTools a plugin's commands get (connectors.base.CliTools)."""

    def settings(self, args: argparse.Namespace, *, require_secrets: bool = True) -> Any:
        return _settings(args, require_secrets=require_secrets)

    def existing_path(self, text: str) -> Path:
        return existing_path(text)

    def duration(self, text: str) -> str:
        return _duration(text)

    def http(self) -> httpx.Client:
        from hub.pipeline.http import USER_AGENT

        return httpx.Client(timeout=15, headers={"User-Agent": USER_AGENT})

    def with_store(self, settings: Any, work: Callable[[Any], Awaitable[Any]]) -> Any:
        import asyncio

        from hub.clock import SystemClock
        from hub.schedule.upkeep import upkeep_context
        from hub.store import open_store
        from hub.store.crypto import TokenCipher

        async def run() -> Any:
            store = open_store(settings.database_url)
            store.cipher = TokenCipher(settings.encryption_keys)
            try:
                async with upkeep_context(store, SystemClock()) as ctx:
                    return await work(ctx)
            finally:
                store.close()

        return asyncio.run(run())
