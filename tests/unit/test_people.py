"""The people directory and rules that address people: `to:`, `for_each:`, `mention`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.base import RenderedAction
from hub.config import Settings, load_settings_text
from hub.config.people import Directory
from hub.errors import ConfigError
from hub.events import idempotency_key
from hub.pipeline.plan import plan_delivery
from hub.plugins import load_plugins
from hub.rules import RuleSet, load_ruleset, render_actions
from hub.rules.command_filters import command_args, option_named
from hub.rules.matcher import RenderProblem
from hub.rules.templates import TemplateEngine
from hub.rules.testing import dry_run

PLUGINS = load_plugins()
ADA_DISCORD = "576377900236931079"
CONFIG = """
destinations:
  mail: {connector: email, host: smtp.example.com, from: hub@example.com}
roles: [project-manager, team-member, client]
people:
  ada:
    name: Ada Lovelace
    email: ada@example.com
    discord: "576377900236931079"
    slack: U0ADA00001
    timezone: Europe/London
    roles: [project-manager, team-member]
  grace:
    name: Grace Hopper
    email: grace@example.com
    roles: team-member
  carl:
    name: Carl Client
    roles: [client]
"""


def _settings(text: str = CONFIG) -> Settings:
    return load_settings_text(text, environ={}, plugins=PLUGINS, base_dir=Path("/srv/hub"))


def _people() -> Directory:
    return _settings().people


def _ruleset(tmp_path: Path, text: str) -> RuleSet:
    (tmp_path / "r.yaml").write_text(text)
    settings = _settings()
    return load_ruleset(
        tmp_path,
        connectors=PLUGINS.connectors,
        destinations=settings.destinations,
        engine=TemplateEngine(),
        display_root=tmp_path,
        people=settings.people,
    )


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as info:
        _ruleset(tmp_path, text)
    return str(info.value)


def _task(assignees: list[str]) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": "ev-1",
        "source": "notion/ws",
        "type": "notion.page.updated",
        "subject": "p1",
        "time": "2026-11-21T10:00:00Z",
        "data": {
            "entity": {"kind": "page", "id": "p1", "url": None, "title": "Write launch post"},
            "actor": {"id": "u1", "name": "Ada Lovelace", "email": None},
            "changes": {},
            "fields": {"Assignee": assignees, "Status": "In progress"},
            "raw": None,
        },
    }


FAN_OUT = """
rules:
  - id: tell-assignees
    on: notion.page.updated
    actions:
      - email:
          for_each: "{{ event.data.fields.Assignee }}"
          as: assignee
          to: {person: "{{ assignee }}"}
          via: mail
          subject: "{{ event.data.entity.title }}"
          text: "Hi {{ person.name }} ({{ person.timezone }}): yours, {{ assignee }}"
"""


def test_people_config_gives_each_person_every_id_and_their_roles() -> None:
    people = _people()
    ada = people.find("Ada Lovelace")
    assert ada is not None
    assert ada.key == "ada"
    assert people.find("ADA@example.com") is ada
    assert people.find("<@576377900236931079>") is ada  # a Discord mention
    assert people.find({"object": "user", "id": "U0ADA00001"}) is ada
    assert [p.key for p in people.in_role("team-member")] == ["ada", "grace"]
    assert people.find("Nobody") is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("  bob: {roles: [boss]}\n", "people.bob.roles: unknown role 'boss'"),
        ("  bob: {email: ada@example.com}\n", "people.bob.email: 'ada@example.com' is also ada's"),
        ("  bob: {timezone: Mars/Olympus}\n", "people.bob.timezone: unknown time zone"),
    ],
)
def test_people_config_mistakes_are_located_errors(extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _settings(CONFIG + extra)
    assert message in str(info.value)


def test_for_each_fans_out_one_delivery_per_assignee_with_their_own_key(tmp_path: Path) -> None:
    rule = _ruleset(tmp_path, FAN_OUT).rules[0]
    out = render_actions(rule, _task(["Ada Lovelace", "grace@example.com"]))
    assert [index for index, _ in out] == [1000, 2000]
    first, second = (r for _, r in out)
    assert isinstance(first, RenderedAction)
    assert isinstance(second, RenderedAction)
    assert first.params["to"] == "ada@example.com"
    assert first.params["text"] == "Hi Ada Lovelace (Europe/London): yours, Ada Lovelace"
    assert second.params["to"] == "grace@example.com"
    planned = [plan_delivery("in-1", "ev-1", "k", rule, i, r, {}) for i, r in out]
    assert {d.idempotency_key for d in planned} == {
        idempotency_key("ev-1", rule.id, 1000),
        idempotency_key("ev-1", rule.id, 2000),
    }
    assert [d.connector for d in planned] == ["email", "email"]


def test_an_unknown_or_unreachable_person_is_a_skipped_delivery_with_the_reason(
    tmp_path: Path,
) -> None:
    rule = _ruleset(tmp_path, FAN_OUT).rules[0]
    out = render_actions(rule, _task(["Mallory", "Carl Client", "Ada Lovelace"]))
    unknown, no_email, ada = (r for _, r in out)
    assert isinstance(unknown, RenderProblem)
    assert unknown.skip
    assert "no person 'Mallory' in people:" in unknown.message
    assert isinstance(no_email, RenderProblem)
    assert no_email.skip
    assert "person 'carl' has no email id" in no_email.message
    assert isinstance(ada, RenderedAction)
    row = plan_delivery("in-1", "ev-1", "k", rule, out[0][0], unknown, {})
    assert row.status == "skipped"
    assert "Mallory" in (row.last_error or "")


def test_a_role_fans_out_to_everyone_in_it_and_mention_names_chat_users(tmp_path: Path) -> None:
    rules = """
rules:
  - id: tell-pms
    on: notion.page.updated
    actions:
      - email:
          to: {role: team-member}
          via: mail
          subject: "{{ event.data.entity.title }}"
          text: "{{ event.data.fields.Assignee | mention('discord') }} / {{ people.ada.slack }}"
"""
    rule = _ruleset(tmp_path, rules).rules[0]
    out = render_actions(rule, _task(["Ada Lovelace", "Zed"]))
    assert [(i, r.params["to"]) for i, r in out if isinstance(r, RenderedAction)] == [
        (1000, "ada@example.com"),
        (2000, "grace@example.com"),
    ]
    assert out[0][1].params["text"] == "<@576377900236931079>, Zed / U0ADA00001"  # type: ignore[union-attr]


def test_dry_run_shows_the_fan_out(tmp_path: Path) -> None:
    ruleset = _ruleset(tmp_path, FAN_OUT)
    [verdict] = dry_run(ruleset, _task(["Ada Lovelace", "Grace Hopper"]))
    assert [a["email"]["to"] for a in verdict.actions] == ["ada@example.com", "grace@example.com"]


@pytest.mark.parametrize(
    ("to", "message"),
    [
        ("{role: boss}", "unknown role 'boss'"),
        ("{person: mallory}", "no person 'mallory' in people:"),
        ('{person: "{{ who }}"}', "undefined name who in to:"),
    ],
)
def test_rules_check_rejects_unknown_roles_and_people(
    tmp_path: Path, to: str, message: str
) -> None:
    text = f"""
rules:
  - id: r
    on: notion.page.updated
    actions:
      - email: {{to: {to}, via: mail, subject: s, text: t}}
"""
    assert message in _error(tmp_path, text)


def test_a_connector_that_cannot_address_people_says_so(tmp_path: Path) -> None:
    text = """
rules:
  - id: r
    on: notion.page.updated
    actions:
      - webhook: {to: {person: ada}, url: "https://example.com/hook"}
"""
    assert "connector cannot send to a person" in _error(tmp_path, text)


def test_command_args_reads_discord_options_and_slack_words_alike() -> None:
    discord = {
        "args": ["assign", "task:TASK-41", "who:576377900236931079"],
        "options": {"task": "TASK-41", "who": "576377900236931079"},
    }
    slack = {"args": ["assign", "TASK-41", "<@U0ADA00001|ada>"], "options": {}}
    assert command_args(discord, "task", "who") == {"task": "TASK-41", "who": ADA_DISCORD}
    assert command_args(slack, "task", "who") == {"task": "TASK-41", "who": "<@U0ADA00001|ada>"}
    words = {"args": ["new", "Write", "launch", "post", "due:2026-11-28"], "options": {}}
    assert command_args(words, "title") == {"title": "Write launch post"}
    assert command_args({"args": ["assign"]}, "task", "who") == {"task": "", "who": ""}


def test_option_named_finds_the_databases_spelling() -> None:
    options = [{"name": "Not started"}, {"name": "In progress"}]
    assert option_named(options, "in PROGRESS") == "In progress"
    assert option_named(options, "Don") == ""
