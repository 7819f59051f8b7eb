"""Optional plugin hooks are declared in the protocols with defaults, and `switchboard sign`
signs through each source's own `sign` hook (a signature its `verify` accepts)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from connectors.base import Connector
from hub.cli import main
from hub.clock import SystemClock
from hub.plugins import load_plugins
from hub.secrets import Secret
from hub.sources.base import HookRequest, Source, has_upkeep

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
SLACK_BODY = FIXTURES / "slack" / "block_actions.body.txt"
CONFIG = """
store: {url: "sqlite:///store.db"}
rules: {path: rules}
sources:
  github: {secret: {env: GH_SECRET}}
  slack: {secret: {env: SLACK_SECRET}}
  discord: {secret: {env: DISCORD_KEY}}
"""


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "switchboard.yaml").write_text(CONFIG)
    (tmp_path / "rules").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GH_SECRET", "gh-secret-123")
    monkeypatch.setenv("SLACK_SECRET", "slack-signing-secret")
    monkeypatch.setenv("DISCORD_KEY", "ab" * 32)
    return tmp_path


def _headers(out: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in out.strip().splitlines())


def test_every_installed_plugin_inherits_the_declared_hooks() -> None:
    plugins = load_plugins()
    for cls in plugins.connectors.values():
        assert Connector in cls.__mro__
        assert isinstance(cls.rate_limits, tuple)
        assert cls.budget_key is Connector.budget_key or cls.name == "notion"
    for source in plugins.sources.values():
        assert Source in source.__mro__
        assert isinstance(source.event_types, tuple)
        assert source.event_types
    assert [c.name for c in plugins.sources["gcal"].cli_commands()] == ["gcal"]
    assert [c.name for c in plugins.sources["discord"].cli_commands()] == ["discord"]
    assert has_upkeep(plugins.sources["gcal"].from_options({}))
    assert not has_upkeep(plugins.sources["github"]())


def test_sign_github_prints_the_hmac_header(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "body.json").write_bytes(b'{"zen": "hi"}')
    assert main(["sign", "github", "body.json"]) == 0
    # hmac-sha256("gh-secret-123", b'{"zen": "hi"}'), as GitHub computes it.
    digest = hmac.new(b"gh-secret-123", b'{"zen": "hi"}', hashlib.sha256).hexdigest()
    assert capsys.readouterr().out == f"X-Hub-Signature-256: sha256={digest}\n"


def test_sign_slack_makes_a_request_its_verify_accepts(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sign", "slack", str(SLACK_BODY)]) == 0
    headers = {k.lower(): v for k, v in _headers(capsys.readouterr().out).items()}
    assert set(headers) == {"x-slack-request-timestamp", "x-slack-signature"}
    source = load_plugins().sources["slack"].from_options({})
    request = HookRequest(
        source="slack",
        headers={**headers, "content-type": "application/x-www-form-urlencoded"},
        body=SLACK_BODY.read_bytes(),
        received_at=SystemClock().now(),
    )
    verdict = source.verify(request, Secret("slack-signing-secret", "env"), SystemClock())
    assert verdict.store


def test_sign_discord_says_why_it_cannot(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "body.json").write_bytes(b'{"type": 1}')
    assert main(["sign", "discord", "body.json"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("switchboard: the discord source cannot sign")
    assert "private key" in err
