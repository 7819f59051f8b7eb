"""A newcomer's rule mistakes get answers that say what to fix and where (issue #24)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from connectors.base import Destination
from hub.cli import main
from hub.clock import FakeClock
from hub.config import load_settings
from hub.errors import ConfigErrors
from hub.plugins import load_plugins
from hub.rules import RuleSetRef, load_ruleset
from hub.rules.reload import RulesWatcher
from hub.rules.templates import TemplateEngine
from hub.rules.testing import normalize_payload
from hub.runtime import load_rules
from tests.support import FIXTURES, REPO, fixture_path

PLUGINS = load_plugins()


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
    assert "installed sources: discord, gcal, github, intake, notion," in captured.err


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


# --- `on:` patterns no source emits -----------------------------------------------------


def _fixture_requests() -> Iterator[tuple[str, dict[str, str], bytes]]:
    """Every fixture a source receives from its provider, with the headers it comes with."""
    json_type = {"content-type": "application/json"}
    github = FIXTURES / "github"
    for folder in sorted(p for p in github.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.json")):
            yield "github", {**json_type, "x-github-event": folder.name}, path.read_bytes()
    for path in sorted((FIXTURES / "notion" / "webhooks").glob("*.json")):
        body = json.loads(path.read_bytes())
        # the handshake is answered, never an event; a burst file holds several deliveries
        for delivery in body if isinstance(body, list) else [body]:
            if "verification_token" not in delivery:
                yield "notion", json_type, json.dumps(delivery).encode()
    for path in sorted((FIXTURES / "notion" / "automation").glob("*.json")):
        headers = {**json_type, "x-switchboard-path": "task-done"}
        yield "notion-automation", headers, path.read_bytes()
    for path in sorted((FIXTURES / "discord").glob("interaction.*.json")):
        if ".response." not in path.name:
            yield "discord", json_type, path.read_bytes()
    form = {"content-type": "application/x-www-form-urlencoded"}
    for name in ("slash-command.body.txt", "block_actions.body.txt"):
        yield "slack", form, (FIXTURES / "slack" / name).read_bytes()
    for path in sorted((FIXTURES / "gcal" / "push").glob("*.headers.json")):
        headers = json.loads(path.read_bytes())
        yield "gcal", {k.lower(): str(v) for k, v in headers.items()}, b""


def test_every_event_type_sources_emit_on_the_fixtures_is_declared() -> None:
    # given every provider fixture run through its source's own normalizer
    emitted: dict[str, set[str]] = {}
    for source, headers, body in _fixture_requests():
        events = normalize_payload(PLUGINS.sources[source](), body, headers, FakeClock())
        emitted.setdefault(source, set()).update(e["type"] for e in events)
    assert set(emitted) == {"github", "notion", "notion-automation", "discord", "slack", "gcal"}
    assert len(emitted["github"]) > 100
    # then each type is one its source declares, so `rules check` never warns about it
    undeclared = {
        source: sorted(
            t
            for t in types
            if not any(fnmatchcase(t, d) for d in PLUGINS.sources[source].event_types)
        )
        for source, types in emitted.items()
    }
    assert undeclared == {source: [] for source in emitted}
    # and the provider sources list their types: a catch-all would hide a typo
    for name in ("github", "notion", "gcal"):
        assert not [t for t in PLUGINS.sources[name].event_types if "*" in t.split(".")[1]]


def _write_rule(example: Path, on: str) -> None:
    (example / "rules" / "typo.yaml").write_text(
        f"rules:\n  - id: issue-closed\n    on: {on}\n    actions:\n"
        "      - log: {to: demo-log, message: closed}\n"
    )


def test_rules_check_warns_on_an_event_type_no_source_emits_and_suggests_one(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_rule(example, "github.issue.closed")
    assert main(["rules", "check"]) == 0
    captured = capsys.readouterr()
    assert captured.err.splitlines()[-1] == (
        "warning: rules/typo.yaml:3:9: rule 'issue-closed' never fires on 'github.issue.closed': "
        "no installed source emits that event type; did you mean 'github.issues.closed'?"
    )
    assert ", 1 warnings" in captured.out


def test_each_unreachable_pattern_is_a_warning_even_beside_a_good_one(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (example / "rules" / "typo.yaml").write_text(
        "rules:\n"
        + "".join(
            f"  - id: rule-{n}\n    on: {on}\n    actions:\n"
            "      - log: {to: demo-log, message: hi}\n"
            for n, on in enumerate(
                ["[github.push, gcal.event.canceled]", "notoin.page.*", "jira.issue.created"]
            )
        )
    )
    assert main(["rules", "check"]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "typo.yaml" in line]
    assert warnings == [
        "warning: rules/typo.yaml:3:23: rule 'rule-0' never fires on 'gcal.event.canceled': no "
        "installed source emits that event type; did you mean 'gcal.event.cancelled'?",
        "warning: rules/typo.yaml:7:9: rule 'rule-1' never fires on 'notoin.page.*': no "
        "installed source emits that event type; did you mean 'notion.page.*'?",
        "warning: rules/typo.yaml:11:9: rule 'rule-2' never fires on 'jira.issue.created': no "
        "installed source emits that event type; installed sources emit event types under "
        "command.*, gcal.*, github.*, intake.*, notion.*, schedule.*",
    ]


def test_a_hot_reload_logs_the_warning_and_keeps_it_on_the_rule_set(
    example: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(example / "switchboard.yaml", environ=os.environ, plugins=PLUGINS)
    templates = TemplateEngine()
    ref = RuleSetRef(load_rules(settings, PLUGINS, templates).ruleset)
    assert ref.current.warnings == ()
    watcher = RulesWatcher(
        ref,
        settings.rules_path,
        lambda: load_rules(settings, PLUGINS, templates).ruleset,
        now=float,
    )
    _write_rule(example, "github.issue.closed")
    with caplog.at_level(logging.WARNING, logger="switchboard.rules"):
        assert watcher.check_once() is True
    expected = (
        "rules/typo.yaml:3:9: rule 'issue-closed' never fires on 'github.issue.closed': "
        "no installed source emits that event type; did you mean 'github.issues.closed'?"
    )
    assert list(ref.current.warnings) == [expected]
    assert [r.getMessage() for r in caplog.records] == [f"rule warning: {expected}"]


# --- indentation mistakes ---------------------------------------------------------------

INDENTATION = REPO / "tests" / "fixtures" / "rules" / "indentation"
ONE_MORE = "indent it by two more spaces"
#: One fixture per typical mistake → every error `rules check` prints for it, exactly.
INDENTATION_ERRORS = {
    "action-params-at-action-level": [
        f"6:9: `channel:` belongs under `discord:` (line 5); {ONE_MORE}",
        f"7:9: `content:` belongs under `discord:` (line 5); {ONE_MORE}",
    ],
    "action-params-left-of-the-dash": [
        "6:7: `channel:` belongs under `discord:` (line 5); indent it by four more spaces"
    ],
    "action-param-dedented": [
        f"7:9: `message:` belongs under `log:` (line 5); {ONE_MORE} to line up with `to:`"
    ],
    "action-list-not-indented": [
        f"6:7: `to:` belongs under `log:` (line 5); {ONE_MORE}",
        f"7:7: `message:` belongs under `log:` (line 5); {ONE_MORE}",
    ],
    "where-keys-at-rule-level": [
        f"5:5: `fields.merged:` belongs under `where:` (line 4); {ONE_MORE}"
    ],
    "where-keys-under-on": [
        "4:7: `fields.merged:` is indented under `on:` (line 3), which already has a value; "
        "remove two spaces to line up with `on:`, under `where:` if it is a condition, "
        "or give it a parent key of its own"
    ],
    "rule-key-under-id": [
        "3:7: `on:` is indented under `id:` (line 2), which already has a value; "
        "remove two spaces to line up with `id:`, or give it a parent key of its own"
    ],
    "rule-key-one-space-short": [
        "4:4: `actions:` is not lined up with `on:` (line 3); indent it by one more space"
    ],
    "rule-keys-at-top-level": [
        f"3:1: `on:` belongs in the last item of `rules:` (line 1); {ONE_MORE} "
        "to line up with `id:`",
        f"4:1: `actions:` belongs in the last item of `rules:` (line 1); {ONE_MORE} "
        "to line up with `id:`",
    ],
    "throttle-keys-at-rule-level": [f"5:5: `per:` belongs under `throttle:` (line 4); {ONE_MORE}"],
    "embed-keys-at-params-level": [f"8:11: `title:` belongs under `embed:` (line 7); {ONE_MORE}"],
    "unquoted-colon-in-value": [
        "7:29: the value of `message:` contains ': ', which YAML reads as another key; "
        "put the value in quotes"
    ],
}


def test_every_indentation_fixture_has_its_expected_errors() -> None:
    assert sorted(INDENTATION_ERRORS) == sorted(p.stem for p in INDENTATION.glob("*.yaml"))


@pytest.mark.parametrize("name", sorted(INDENTATION_ERRORS))
def test_an_indentation_mistake_names_the_key_and_where_it_belongs(name: str) -> None:
    destinations = {
        "demo-log": Destination(name="demo-log", connector="log", options={"path": "x"}),
        "task-notifications": Destination(
            name="task-notifications", connector="discord", options={}
        ),
    }
    with pytest.raises(ConfigErrors) as caught:
        load_ruleset(
            INDENTATION / f"{name}.yaml",
            connectors=PLUGINS.connectors,
            destinations=destinations,
            engine=TemplateEngine(),
            display_root=REPO,
        )
    where = f"tests/fixtures/rules/indentation/{name}.yaml:"
    assert [e.render() for e in caught.value.errors] == [
        where + error for error in INDENTATION_ERRORS[name]
    ]
