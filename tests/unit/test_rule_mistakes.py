"""A newcomer's rule mistakes get answers that say what to fix and where (issue #24)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hub.cli import main
from tests.support import GITHUB_SECRET, REPO, fixture_path


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped example config and rules, run from its directory."""
    shutil.copy(REPO / "switchboard.example.yaml", tmp_path / "switchboard.yaml")
    shutil.copytree(REPO / "rules", tmp_path / "rules")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SWITCHBOARD_SECRET_GITHUB", GITHUB_SECRET)
    return tmp_path


@pytest.mark.parametrize(
    ("provider", "name"),
    [("github", ("issues", "opened.json")), ("notion", ("webhooks", "page.created.json"))],
)
def test_simulate_refuses_a_raw_payload_without_source_and_suggests_it(
    example: Path, capsys: pytest.CaptureFixture[str], provider: str, name: tuple[str, str]
) -> None:
    payload = fixture_path(provider, *name)
    assert main(["simulate", str(payload)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        f"switchboard: {payload}: without --source, payload must be a normalized event "
        "(an object with 'type' and 'source')"
    ) in captured.err
    assert f"switchboard simulate {payload} --source SOURCE -H 'Name: value'" in captured.err
    assert "installed sources: discord, gcal, github, notion," in captured.err


def test_simulate_takes_a_normalized_event_without_source(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = example / "event.json"
    event.write_text(
        '{"specversion": "1.0", "id": "e1", "source": "github/acme/app", '
        '"type": "github.issues.opened", "data": {"entity": {"title": "Bug"}}}'
    )
    assert main(["simulate", str(event)]) == 0
    assert "MATCH github-issue-opened" in capsys.readouterr().out
