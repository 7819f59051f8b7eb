"""`switchboard discord register-commands`: the command the discord source adds to the CLI."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from connectors.base import CliCommand, CliTools
from hub.errors import ConfigError


def cli_commands() -> tuple[CliCommand, ...]:
    return (CliCommand(name="discord", help="Discord helpers", build=_build),)


def _build(discord: argparse.ArgumentParser, tools: CliTools) -> None:
    discord_sub = discord.add_subparsers(title="discord commands")
    register = discord_sub.add_parser(
        "register-commands",
        help="replace the application's slash commands with those of a YAML file",
    )
    register.add_argument("--application-id", required=True)
    register.add_argument("--guild", help="register in one server (at once) instead of globally")
    register.add_argument(
        "--file", type=tools.existing_path, default=Path("docs/examples/discord-commands.yaml")
    )
    register.add_argument(
        "--token-env", default="DISCORD_BOT_TOKEN", help="environment variable with the bot token"
    )
    register.add_argument("--api-url", default="https://discord.com/api/v10")
    register.set_defaults(run=lambda args: _register_commands(args, tools))


def _register_commands(args: argparse.Namespace, tools: CliTools) -> int:
    from hub.sources._discord_commands import load_commands, register_commands

    token = os.environ.get(args.token_env)
    if not token:
        raise ConfigError(f"set {args.token_env} to the bot token of the application")
    commands = load_commands(args.file)
    with tools.http() as client:
        names = register_commands(
            client,
            commands,
            application_id=args.application_id,
            bot_token=token,
            guild_id=args.guild,
            api_url=args.api_url,
        )
    where = f"server {args.guild}" if args.guild else "every server (global, within an hour)"
    print(f"registered {len(names)} commands for {where}: {', '.join('/' + n for n in names)}")
    return 0
