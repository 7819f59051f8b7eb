"""Every `switchboard` command answers bad input with a line saying what to do, never a
traceback: missing files, wrong flags, wrong formats, enumerated from the parser itself."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub.cli import _parser, existing_path, main
from tests.support import GITHUB_SECRET, REPO, copy_example

GARBAGE = b"\xff\xfe{{ not: [json, or: yaml\n\x00"


def leaf_commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every runnable command (`rules check`, `gcal watch`, ...) with its parser."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups and path:
        yield path, parser
    for group in groups:
        for name, sub in group.choices.items():
            yield from leaf_commands(sub, (*path, name))


COMMANDS = dict(leaf_commands(_parser()))


@dataclass(frozen=True)
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> CLI:
    copy_example(tmp_path)
    (tmp_path / "garbage").write_bytes(GARBAGE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SWITCHBOARD_SECRET_GITHUB", GITHUB_SECRET)
    for name in (
        "SWITCHBOARD_CONFIG",
        "SWITCHBOARD_TRACEBACK",
        "DISCORD_BOT_TOKEN",
        "GOOGLE_CLIENT_SECRET",
    ):
        monkeypatch.delenv(name, raising=False)
    # `admin hash-password` reads a password from stdin when it is not a terminal.
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    return CLI(tmp_path, capsys)


class CLI:
    def __init__(self, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.capsys = capsys

    def run(self, argv: list[str]) -> Outcome:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        captured = self.capsys.readouterr()
        outcome = Outcome(code, captured.out, captured.err)
        shown = f"switchboard {' '.join(argv)} → {code}\n{outcome.out}{outcome.err}"
        assert "Traceback" not in outcome.out + outcome.err, shown
        assert "a bug" not in outcome.err, shown
        if code != 0:
            last = outcome.err.strip().splitlines()[-1:] or [""]
            assert last[0].startswith("switchboard"), f"no line saying what to do: {shown}"
        return outcome


def fill_required(parser: argparse.ArgumentParser, root: Path) -> list[str]:
    """Plausible values for the required arguments, so only the case under test is wrong."""
    argv: list[str] = []
    for action in parser._actions:
        is_positional = not action.option_strings
        if not action.required or action.nargs in ("?", "*"):
            continue
        value = (
            str(action.choices and next(iter(action.choices)))
            if action.choices
            else str(root / "switchboard.yaml")
            if action.type is existing_path
            else "1"
        )
        argv += [value] if is_positional else [action.option_strings[0], value]
    return argv


def replace_value(argv: list[str], action: argparse.Action, value: str) -> list[str]:
    """`argv` with `action`'s value set to `value` (added when optional and absent)."""
    if not action.option_strings:
        placeholder = str(Path.cwd() / "switchboard.yaml")
        if placeholder not in argv:  # an optional positional (`rules check [PATH]`)
            return [*argv, value]
        index = argv.index(placeholder)
        return [*argv[:index], value, *argv[index + 1 :]]
    flag = action.option_strings[0]
    if flag in argv:
        index = argv.index(flag)
        return [*argv[: index + 1], value, *argv[index + 2 :]]
    return [*argv, flag, value]


def value_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.dest not in ("help",) and a.nargs != 0 and not isinstance(a, argparse._HelpAction)
    ]


#: Commands that read no switchboard.yaml.
CONFIG_FREE = {("secrets", "new-key")}


@pytest.mark.parametrize("command", sorted(COMMANDS), ids=" ".join)
def test_bad_input_gets_one_line_saying_what_to_do(cli: CLI, command: tuple[str, ...]) -> None:
    parser = COMMANDS[command]
    required = fill_required(parser, cli.root)
    blocks = bool(parser.get_default("blocks"))

    # A flag the command does not have, and missing required arguments: usage errors.
    assert cli.run([*command, "--no-such-flag", *required]).code == 2
    if required:
        assert cli.run(list(command)).code == 2

    # A config file that is missing, or that is not YAML at all (a command that reads no
    # config, such as `secrets new-key`, may succeed; it must still not crash).
    read_config = command not in CONFIG_FREE
    for config in ("missing.yaml", "garbage"):
        code = cli.run(["-c", config, *command, *required]).code
        assert code in (1, 2) if read_config else code in (0, 1, 2)

    for action in value_actions(parser):
        if action.type is existing_path:
            for bad in ("missing.json", "garbage", "."):
                outcome = cli.run(replace_value([*command, *required], action, bad))
                assert outcome.code == 2 or bad != "missing.json", outcome
        elif action.type is int:
            assert cli.run(replace_value([*command, *required], action, "many")).code == 2
        elif not blocks and not action.choices and action.nargs is None:
            # Free text parsed later (durations, URLs, revisions): refused, not a traceback.
            cli.run(replace_value([*command, *required], action, "not valid!"))


def test_every_command_is_covered() -> None:
    assert {"serve", "sign", "simulate", "replay", "prune"} <= {c[0] for c in COMMANDS}
    assert ("rules", "check") in COMMANDS
    assert ("gcal", "watch") in COMMANDS


def test_simulate_without_the_event_header_names_the_header(cli: CLI) -> None:
    payload = REPO.parent / "shared" / "fixtures" / "github" / "issues" / "opened.json"
    outcome = cli.run(["simulate", "--source", "github", str(payload)])
    assert outcome.code == 2
    assert "header x-github-event is missing" in outcome.err
    assert "-H 'Name: value'" in outcome.err


def test_sign_a_missing_file_names_it(cli: CLI) -> None:
    outcome = cli.run(["sign", "github", "missing.json"])
    assert outcome.code == 2
    assert outcome.err.endswith(
        "switchboard sign: error: argument payload: missing.json: no such file or directory\n"
    )
