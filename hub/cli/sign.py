"""`switchboard sign SOURCE FILE`: the headers a source's `verify` accepts for a file."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from hub.cli.common import _settings, existing_path
from hub.clock import SystemClock
from hub.errors import ConfigError


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], sources: Iterable[str]
) -> None:
    sign = sub.add_parser("sign", help="print the signature header a source expects for a file")
    sign.add_argument("source", choices=sorted(sources))
    sign.add_argument("payload", type=existing_path)
    sign.set_defaults(run=_sign)


def _sign(args: argparse.Namespace) -> int:
    """Through the source's `sign` hook; one that cannot sign (Discord) says why."""
    settings, plugins = _settings(args)
    configured = settings.sources.get(args.source)
    if configured is None or configured.secret is None:
        raise ConfigError(f"source '{args.source}' is not enabled in {args.config}")
    source = plugins.sources[args.source].from_options(configured.options)
    body = args.payload.read_bytes()
    headers = source.sign(body, configured.secret.reveal(), now=SystemClock().now())
    for name, value in headers.items():
        print(f"{name}: {value}")
    return 0
