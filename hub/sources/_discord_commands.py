"""Register the slash commands Discord shows users (bulk overwrite, so the file is the truth).

Docs: https://discord.com/developers/docs/interactions/application-commands
`PUT /applications/{app}/commands` (global, propagates within an hour) or
`PUT /applications/{app}/guilds/{guild}/commands` (one server, at once) replaces the whole
set with the file's commands: running it twice changes nothing, and a command deleted
from the file disappears from Discord.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from hub.errors import ConfigError
from hub.yamldoc import load_yaml_file

API_URL = "https://discord.com/api/v10"
#: Discord's rule for CHAT_INPUT command and option names.
_NAME = re.compile(r"^[-_\w]{1,32}$")
_OPTION_TYPES = set(range(1, 12))


def load_commands(path: Path) -> list[dict[str, Any]]:
    """The commands of a YAML file (`commands: [...]`), checked as Discord would."""
    doc = load_yaml_file(path)
    commands = doc.data.get("commands") if isinstance(doc.data, Mapping) else None
    if not isinstance(commands, list) or not commands:
        raise ConfigError(f"{path}: expected `commands:` with a list of slash commands")
    problems: list[str] = []
    for index, command in enumerate(commands):
        where = f"{path}: commands[{index}]"
        problems += _check(command, where)
    if problems:
        raise ConfigError("; ".join(problems))
    return [dict(c) for c in commands]


def _check(item: object, where: str) -> list[str]:
    if not isinstance(item, Mapping):
        return [f"{where} must be a mapping with name and description"]
    problems = []
    name, description = item.get("name"), item.get("description")
    if not isinstance(name, str) or not _NAME.match(name) or name != name.lower():
        problems.append(f"{where}: name {name!r} must be 1-32 lower-case letters, digits, - or _")
    if not isinstance(description, str) or not 1 <= len(description) <= 100:
        problems.append(f"{where}: description must be 1-100 characters")
    options = item.get("options", [])
    if not isinstance(options, list) or len(options) > 25:
        problems.append(f"{where}: options must be a list of at most 25")
        return problems
    for index, option in enumerate(options):
        problems += _check(option, f"{where}.options[{index}]")
        if isinstance(option, Mapping) and option.get("type") not in _OPTION_TYPES:
            problems.append(f"{where}.options[{index}]: type must be an option type 1-11")
    return problems


def register_commands(
    client: httpx.Client,
    commands: Sequence[Mapping[str, Any]],
    *,
    application_id: str,
    bot_token: str,
    guild_id: str | None = None,
    api_url: str = API_URL,
) -> list[str]:
    """Replace the application's commands with `commands`; the names Discord now has."""
    scope = f"/guilds/{guild_id}" if guild_id else ""
    url = f"{api_url.rstrip('/')}/applications/{application_id}{scope}/commands"
    try:
        response = client.put(
            url, json=list(commands), headers={"Authorization": f"Bot {bot_token}"}
        )
    except httpx.TransportError as exc:
        raise ConfigError(f"could not reach Discord: {type(exc).__name__}") from None
    if response.status_code == 401:
        raise ConfigError("Discord refused the bot token (401); check DISCORD_BOT_TOKEN")
    if not response.is_success:
        detail = response.text[:300].replace(bot_token, "REDACTED")
        raise ConfigError(f"Discord answered {response.status_code}: {detail}")
    return [str(c.get("name")) for c in response.json() if isinstance(c, Mapping)]
