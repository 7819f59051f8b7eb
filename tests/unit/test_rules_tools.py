"""`rules check`, `rules test`, `simulate` and hot reload, through the CLI and the watcher."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from connectors.base import Destination
from hub.cli import main
from hub.plugins import load_plugins
from hub.rules import RuleSet, RuleSetRef, load_ruleset, match_rules
from hub.rules.reload import RulesWatcher
from hub.rules.templates import TemplateEngine
from tests.support import REPO, fixture_path

PLUGINS = load_plugins()


def test_shipped_rules_pass_check_and_their_tests(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rules", "check"]) == 0
    assert main(["rules", "test"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out
    assert "FAIL" not in out


def test_rules_test_prints_a_diff_and_fails_when_an_expectation_is_wrong(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = example / "rules" / "demo.yaml"
    demo.write_text(
        demo.read_text().replace(
            "description: Opened by Codertocat in", "description: Opened by Grace in"
        )
    )
    assert main(["rules", "test"]) == 1
    out = capsys.readouterr().out
    assert "FAIL rules/demo.yaml:" in out
    assert '-          "description": "Opened by Grace in Codertocat/Hello-World",' in out
    assert '+          "description": "Opened by Codertocat in Codertocat/Hello-World",' in out


def test_rules_check_reports_errors_with_location_and_exit_1(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = example / "rules" / "demo.yaml"
    demo.write_text(
        demo.read_text().replace("channel: task-notifications", "channel: task-notification", 1)
    )
    assert main(["rules", "check"]) == 1
    err = capsys.readouterr().err
    assert (
        "rules/demo.yaml:14:11: destination 'task-notification' is not defined; known "
        "discord destinations: milestone-updates, project-updates, task-notifications"
    ) in err


def test_simulate_explains_every_rule_and_sends_nothing(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = fixture_path("github", "pull_request", "closed.json")
    assert (
        main(["simulate", str(payload), "--source", "github", "-H", "X-GitHub-Event: pull_request"])
        == 0
    )
    out = capsys.readouterr().out
    assert "no  github-pr-merged: where fields.merged: True does not hold (value: False)" in out
    assert "MATCH github-activity" in out
    assert "(dry run: nothing was sent)" in out
    assert not (example / "var" / "demo-inbox.log").exists()


def _load_dir(rules_dir: Path) -> RuleSet:
    inbox = Destination(name="inbox", connector="log", options={"path": "x"})
    return load_ruleset(
        rules_dir,
        connectors=PLUGINS.connectors,
        destinations={"inbox": inbox},
        engine=TemplateEngine(),
    )


def _rule(rule_id: str, message: str = "hi") -> str:
    return (
        f"  - id: {rule_id}\n    on: github.push\n    actions:\n"
        f"      - log: {{to: inbox, message: {message}}}\n"
    )


def test_a_broken_edit_is_rejected_and_the_last_good_rules_keep_running(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    rules_file = rules_dir / "test.yaml"
    rules_file.write_text("rules:\n" + _rule("first"))
    ref = RuleSetRef(_load_dir(rules_dir))
    watcher = RulesWatcher(ref, rules_dir, lambda: _load_dir(rules_dir), now=lambda: 42.0)
    assert watcher.check_once() is None  # nothing changed

    rules_file.write_text("rules:\n" + _rule("second", "'{{ broken }'"))
    assert watcher.check_once() is False
    assert [r.id for r in ref.current.rules] == ["first"]
    assert ref.last_error is not None
    assert "test.yaml:5:9: invalid template" in ref.last_error

    rules_file.write_text("rules:\n" + _rule("second", "fixed"))
    assert watcher.check_once() is True
    assert [r.id for r in ref.current.rules] == ["second"]
    assert ref.last_error is None
    assert ref.loaded_at == 42.0


def test_concurrent_matching_during_reloads_never_mixes_two_rule_sets(tmp_path: Path) -> None:
    sets = []
    for prefix in ("a", "b"):
        (tmp_path / prefix).mkdir()
        (tmp_path / prefix / "r.yaml").write_text(
            "rules:\n" + "".join(_rule(f"{prefix}-{n}") for n in range(5))
        )
        sets.append(_load_dir(tmp_path / prefix))
    ref = RuleSetRef(sets[0])
    event = {"type": "github.push", "source": "github/o/r", "data": {}}
    seen: set[tuple[str, ...]] = set()
    done = threading.Event()

    def traffic() -> None:
        for _ in range(3000):
            seen.add(tuple(r.id for r in match_rules(ref.current, event)))

    def reloads() -> None:
        n = 0
        while not done.is_set():
            ref.swap(sets[n % 2])
            n += 1

    swapper = threading.Thread(target=reloads)
    swapper.start()
    workers = [threading.Thread(target=traffic) for _ in range(3)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    done.set()
    swapper.join()
    whole = {tuple(f"a-{n}" for n in range(5)), tuple(f"b-{n}" for n in range(5))}
    assert seen, "no matching happened"
    assert seen <= whole, f"a match mixed two rule sets: {seen - whole}"


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped config with every secret required and none of them set (a rules repo's CI)."""
    text = (REPO / "switchboard.example.yaml").read_text()
    text = text.replace(", optional: true}", "}")
    text = text.replace("{env: DISCORD_WEBHOOK_URL}", "{file: secrets/discord-url}")
    (tmp_path / "switchboard.yaml").write_text(text)
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    monkeypatch.chdir(tmp_path)
    for name in (
        "SWITCHBOARD_SECRET_GITHUB",
        "SWITCHBOARD_SECRET_NOTION",
        "NOTION_TOKEN",
        "SWITCHBOARD_ADMIN_TOKEN",
        "DISCORD_MILESTONES_WEBHOOK_URL",
        "DISCORD_PROJECTS_WEBHOOK_URL",
        "SMTP_PASSWORD",
        "GOOGLE_CLIENT_ID",
        "GOOGLE_CLIENT_SECRET",
        "GOOGLE_REFRESH_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    return tmp_path


def test_rules_tools_run_without_secrets_and_name_the_ones_needed_to_run(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a config whose secrets are all unset, when the rules tools run, then they pass
    assert main(["rules", "check"]) == 0
    captured = capsys.readouterr()
    assert "ok: " in captured.out
    assert "sources.github.secret (SWITCHBOARD_SECRET_GITHUB)" in captured.err
    assert "destinations.task-notifications.webhook_url (file secrets/discord-url)" in captured.err
    assert "admin.tokens.0.token (SWITCHBOARD_ADMIN_TOKEN)" in captured.err
    assert main(["rules", "test"]) == 0
    assert "0 failed" in capsys.readouterr().out
    payload = fixture_path("github", "pull_request", "closed.json")
    args = ["simulate", str(payload), "--source", "github", "-H", "X-GitHub-Event: pull_request"]
    assert main(args) == 0
    assert "(dry run: nothing was sent)" in capsys.readouterr().out


def test_rules_check_still_reports_rule_errors_when_secrets_are_unset(
    offline: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo = offline / "rules" / "demo.yaml"
    demo.write_text(
        demo.read_text().replace("channel: task-notifications", "channel: task-notification", 1)
    )
    assert main(["rules", "check"]) == 1
    assert "destination 'task-notification' is not defined" in capsys.readouterr().err


def test_serve_config_still_refuses_unset_secrets(offline: Path) -> None:
    from hub.config import load_settings
    from hub.errors import ConfigErrors

    with pytest.raises(ConfigErrors, match="SWITCHBOARD_SECRET_GITHUB is not set"):
        load_settings(offline / "switchboard.yaml", environ={}, plugins=PLUGINS)
