"""`switchboard gcal watch|stop|auth`: the commands the gcal source adds to the CLI.

hub/sources/gcal.py loads this module when the CLI asks for its commands and passes its
own class in, so nothing here imports the source back.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable
from typing import Any

from connectors.base import CliCommand, CliTools, parse_duration
from hub.errors import ConfigError, UsageError

COMMAND = "gcal"


def cli_commands(source_type: type[Any]) -> tuple[CliCommand, ...]:
    """The commands, for the configured source when it is a `source_type` (GcalSource)."""

    def build(gcal: argparse.ArgumentParser, tools: CliTools) -> None:
        _build(gcal, tools, source_type)

    return (CliCommand(name=COMMAND, help="Google Calendar helpers", build=build),)


def _build(gcal: argparse.ArgumentParser, tools: CliTools, source_type: type[Any]) -> None:
    gcal_sub = gcal.add_subparsers(title="gcal commands")
    watch = gcal_sub.add_parser(
        "watch",
        help="open the push channel of a calendar to this hub (renewed by the hub)",
    )
    watch.add_argument("--calendar", required=True, help="calendar id, e.g. primary")
    watch.add_argument("--address", required=True, help="public URL of /hooks/gcal")
    watch.add_argument(
        "--ttl", default="7d", type=tools.duration, help="how long the channel lives (max ~7d)"
    )
    watch.set_defaults(run=lambda args: _gcal_watch(args, tools, source_type))
    stop_cmd = gcal_sub.add_parser("stop", help="stop the push channel of a calendar")
    stop_cmd.add_argument("--calendar", required=True)
    stop_cmd.set_defaults(run=lambda args: _gcal_stop(args, tools, source_type))
    auth = gcal_sub.add_parser(
        "auth",
        help="grant Switchboard access to a Google account; prints the refresh token to store",
    )
    auth.add_argument(
        "--client-id",
        default=os.environ.get("GOOGLE_CLIENT_ID"),
        help="OAuth client id of a Desktop app client (env GOOGLE_CLIENT_ID)",
    )
    auth.add_argument(
        "--client-secret-env",
        default="GOOGLE_CLIENT_SECRET",
        help="environment variable holding the client secret (kept off the command line)",
    )
    auth.add_argument("--no-browser", action="store_true", help="only print the URL to open")
    auth.add_argument("--timeout", type=int, default=300, help="seconds to wait for the browser")
    auth.add_argument("--auth-url", default="https://accounts.google.com/o/oauth2/v2/auth")
    auth.add_argument("--token-url", default="https://oauth2.googleapis.com/token")
    auth.set_defaults(run=lambda args: _gcal_auth(args, tools), blocks=True)


def _gcal_source(
    args: argparse.Namespace, tools: CliTools, source_type: type[Any]
) -> tuple[Any, Any, Any]:
    """The configured gcal source with its Calendar client, and the channel token."""
    settings, plugins = tools.settings(args)
    configured = settings.sources.get("gcal")
    if configured is None or configured.secret is None:
        raise ConfigError(
            "enable sources.gcal with a secret: it is the channel token Google sends back"
        )
    source = plugins.sources["gcal"].from_options(configured.options)
    if not isinstance(source, source_type) or source.reader is None:
        raise ConfigError(
            "sources.gcal needs service_account, or client_id, client_secret and refresh_token"
        )
    return settings, source, configured.secret


def _gcal_run(tools: CliTools, settings: Any, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(ctx)` with an HTTP client and the store, outside any worker."""
    from hub.sources._gcal_api import ApiFailure

    try:
        return tools.with_store(settings, work)
    except ApiFailure as exc:
        raise ConfigError(f"Google refused: {exc}") from None


def _gcal_watch(args: argparse.Namespace, tools: CliTools, source_type: type[Any]) -> int:
    from datetime import UTC, datetime

    if not args.address.startswith("https://"):
        raise ConfigError("--address must be the hub's public https URL of /hooks/gcal")
    settings, source, secret = _gcal_source(args, tools, source_type)
    ttl_s = parse_duration(args.ttl).total_seconds()
    channel = _gcal_run(
        tools, settings, lambda ctx: source.watch(ctx, args.calendar, args.address, secret, ttl_s)
    )
    expiration = str(channel.get("expiration") or "")
    when = (
        datetime.fromtimestamp(int(expiration) / 1000, UTC).isoformat()
        if expiration.isdigit()
        else "unknown"
    )
    print(
        f"watching {args.calendar}: channel {channel.get('id')} until {when}; "
        "the hub renews it a day before (serve or switchboard scheduler)"
    )
    return 0


def _gcal_stop(args: argparse.Namespace, tools: CliTools, source_type: type[Any]) -> int:
    settings, source, _ = _gcal_source(args, tools, source_type)
    stopped = _gcal_run(tools, settings, lambda ctx: source.stop(ctx, args.calendar))
    print(f"stopped the push channel of {args.calendar}" if stopped else "no channel to stop")
    return 0


def _gcal_auth(args: argparse.Namespace, tools: CliTools) -> int:
    """Google's installed-app consent flow; needs no switchboard.yaml."""
    import webbrowser

    from hub.sources._gcal_consent import run_consent

    if not args.client_id:
        raise UsageError(
            "pass --client-id (or set GOOGLE_CLIENT_ID): the id of a Desktop app OAuth client "
            "(docs/connect.md#google-calendar)"
        )
    client_secret = os.environ.get(args.client_secret_env)
    if not client_secret:
        raise UsageError(f"set {args.client_secret_env} to the OAuth client's secret")

    def show(url: str) -> None:
        print(f"Open this URL in a browser on this machine and allow access:\n\n  {url}\n")
        print(f"Waiting up to {args.timeout} s for Google's redirect to 127.0.0.1 ...", flush=True)
        if not args.no_browser:
            webbrowser.open(url)

    with tools.http() as client:
        token = run_consent(
            client,
            client_id=args.client_id,
            client_secret=client_secret,
            show=show,
            timeout_s=args.timeout,
            auth_url=args.auth_url,
            token_url=args.token_url,
        )
    print(
        f"\nrefresh token: {token}\n\nStore it as a secret, e.g. GOOGLE_REFRESH_TOKEN (read by "
        "switchboard.yaml's gcal destination and source); anyone holding it can use the "
        "granted access until you revoke it."
    )
    return 0
