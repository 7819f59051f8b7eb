"""`switchboard discord register-commands`: the YAML file becomes the application's commands."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx

from hub.cli import main
from hub.errors import ConfigError
from hub.sources._discord_commands import load_commands, register_commands
from tests.support import REPO

EXAMPLE = REPO / "docs" / "examples" / "discord-commands.yaml"
APP = "1213445701632131072"
GUILD = "1118449749196931072"
TOKEN = "bot-token-not-real"


def _answer(request: httpx.Request) -> httpx.Response:
    sent = json.loads(request.content)
    return httpx.Response(
        200, json=[{**c, "id": str(n), "application_id": APP} for n, c in enumerate(sent)]
    )


@respx.mock
def test_the_example_file_replaces_the_guild_commands(tmp_path: Path) -> None:
    route = respx.put(f"https://discord.com/api/v10/applications/{APP}/guilds/{GUILD}/commands")
    route.mock(side_effect=_answer)
    commands = load_commands(EXAMPLE)
    with httpx.Client() as client:
        names = register_commands(
            client, commands, application_id=APP, bot_token=TOKEN, guild_id=GUILD
        )
    assert names == ["tasks", "project"]
    request = route.calls.last.request
    assert request.headers["authorization"] == f"Bot {TOKEN}"
    assert json.loads(request.content) == commands  # bulk overwrite: the file is the truth


@respx.mock
def test_the_cli_registers_globally_and_reports(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    route = respx.put(f"https://discord.com/api/v10/applications/{APP}/commands")
    route.mock(side_effect=_answer)
    monkeypatch.setenv("DISCORD_BOT_TOKEN", TOKEN)
    code = main(["discord", "register-commands", "--application-id", APP, "--file", str(EXAMPLE)])
    assert code == 0
    assert "registered 2 commands" in capsys.readouterr().out
    assert route.called


@respx.mock
def test_a_refused_token_is_a_clear_error_without_the_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    respx.put(f"https://discord.com/api/v10/applications/{APP}/commands").respond(
        401, json={"message": f"401: Unauthorized {TOKEN}", "code": 0}
    )
    monkeypatch.setenv("DISCORD_BOT_TOKEN", TOKEN)
    code = main(["discord", "register-commands", "--application-id", APP, "--file", str(EXAMPLE)])
    err = capsys.readouterr().err
    assert code == 1
    assert "DISCORD_BOT_TOKEN" in err
    assert TOKEN not in err


def test_a_missing_token_fails_before_any_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISCORD_BOT_TOKEN", raising=False)
    assert main(["discord", "register-commands", "--application-id", APP]) == 1
    assert "set DISCORD_BOT_TOKEN" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("commands: []", "expected `commands:`"),
        ("commands:\n  - {name: Tasks, description: x}", "lower-case"),
        ("commands:\n  - {name: tasks, description: ''}", "1-100 characters"),
        (
            "commands:\n  - name: tasks\n    description: x\n    options:\n"
            "      - {name: status, description: s, type: 99}",
            "option type",
        ),
    ],
)
def test_bad_command_files_are_refused_before_sending(
    yaml_text: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "commands.yaml"
    path.write_text(yaml_text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_commands(path)
