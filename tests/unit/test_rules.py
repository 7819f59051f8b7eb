"""Rule files: located errors, conditions, matching order, rendering, the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.base import Destination, RenderedAction
from hub.plugins import load_plugins
from hub.rules import RuleSet, load_ruleset, match_rules, render_actions
from hub.rules.matcher import RenderProblem
from hub.rules.templates import TemplateEngine
from tests.support import rules_error, rules_in

PLUGINS = load_plugins()
DESTINATIONS = {
    "tasks": Destination(name="tasks", connector="discord"),
    "inbox": Destination(name="inbox", connector="log", options={"path": "x.log"}),
}


def _ruleset(tmp_path: Path, text: str, name: str = "r.yaml") -> RuleSet:
    (tmp_path / name).write_text(text)
    return rules_in(tmp_path, DESTINATIONS)


def _error(tmp_path: Path, text: str) -> str:
    (tmp_path / "r.yaml").write_text(text)
    return rules_error(tmp_path, DESTINATIONS)


def _event(type_: str = "github.issues.opened", **data: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "entity": {"kind": "issue", "id": "o/r#1", "url": "https://x/1", "title": "Fix it"},
        "actor": {"id": "1", "name": "Ada", "email": None},
        "changes": {},
        "fields": {},
        "raw": None,
    }
    base.update(data)
    return {
        "specversion": "1.0",
        "id": "ev-1",
        "source": "github/o/r",
        "type": type_,
        "subject": "issues/1",
        "time": "2026-11-21T10:00:00Z",
        "datacontenttype": "application/json",
        "data": base,
    }


LOG_ACTION = "      - log: {to: inbox, message: hi}\n"


def test_unknown_destination_is_located_with_the_known_ones(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        """rules:
  - id: a
    on: github.push
    actions:
      - discord:
          channel: task
          content: hi
""",
    )
    assert message == (
        "r.yaml:6:11: destination 'task' is not defined; known discord destinations: tasks "
        "(define it under destinations: in switchboard.yaml)"
    )


def test_unknown_connector_is_located(tmp_path: Path) -> None:
    message = _error(tmp_path, "rules:\n  - id: a\n    on: x.y\n    actions:\n      - pager: {}\n")
    assert message.startswith("r.yaml:5:9: unknown connector 'pager'; installed connectors: ")


def test_template_syntax_error_is_located(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        "rules:\n  - id: a\n    on: x.y\n    actions:\n"
        "      - log: {to: inbox, message: '{{ event.id '}\n",
    )
    assert message.startswith("r.yaml:5:9: invalid template:")


def test_bad_when_expression_is_located(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        f"rules:\n  - id: a\n    on: x.y\n    when: '{{{{ 1 + }}}}'\n    actions:\n{LOG_ACTION}",
    )
    assert message.startswith("r.yaml:4:5: when: invalid expression:")


def test_duplicate_rule_id_names_the_first_definition(tmp_path: Path) -> None:
    rule = f"  - id: same\n    on: x.y\n    actions:\n{LOG_ACTION}"
    message = _error(tmp_path, "rules:\n" + rule + rule)
    assert message == (
        "r.yaml:6:5: duplicate rule id 'same' (first defined at r.yaml:2:5); "
        "rule ids must be unique across all rule files"
    )


def test_missing_required_param_is_reported_against_the_connector_schema(tmp_path: Path) -> None:
    message = _error(
        tmp_path, "rules:\n  - id: a\n    on: x.y\n    actions:\n      - log: {to: inbox}\n"
    )
    assert message == "r.yaml:5:9: rules.0.actions.0.log: 'message' is a required property"


def test_unknown_where_operator_says_which_are_allowed(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        f"rules:\n  - id: a\n    on: x.y\n    where:\n"
        f"      fields.n: {{bigger: 3}}\n    actions:\n{LOG_ACTION}",
    )
    assert message.startswith("r.yaml:5:7: where 'fields.n': unknown operator 'bigger'; use one of")


def test_destination_of_another_connector_is_refused(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        "rules:\n  - id: a\n    on: x.y\n    actions:\n      - log: {to: tasks, message: hi}\n",
    )
    assert message == "r.yaml:5:15: destination 'tasks' is a discord destination, not log"


def test_errors_across_files_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("rules:\n  - id: a\n    on: x.y\n")
    (tmp_path / "b.yaml").write_text("rules: [\n")
    lines = rules_error(tmp_path, DESTINATIONS).splitlines()
    assert lines[0] == "a.yaml:2:5: rules.0: 'actions' is a required property"
    assert lines[1].startswith("b.yaml:2:1: invalid YAML")


def test_rules_match_in_load_order_and_continue_false_stops(tmp_path: Path) -> None:
    ruleset = _ruleset(
        tmp_path,
        f"""rules:
  - id: any-github
    on: github.*
    actions:
{LOG_ACTION}  - id: opened
    on: [github.issues.opened, github.pull_request.opened]
    continue: false
    actions:
{LOG_ACTION}  - id: never-reached
    on: github.issues.opened
    actions:
{LOG_ACTION}""",
    )
    assert [r.id for r in match_rules(ruleset, _event())] == ["any-github", "opened"]
    assert [r.id for r in match_rules(ruleset, _event("github.push"))] == ["any-github"]
    assert match_rules(ruleset, _event("notion.page.created")) == []


@pytest.mark.parametrize(
    ("where", "data", "matches"),
    [
        ("fields.Project: Launch", {"fields": {"Project": "Launch"}}, True),
        ("fields.Project: Launch", {"fields": {"Project": "Other"}}, False),
        ("fields.Project: Launch", {"fields": {}}, False),
        ("fields.Assignee: Ada", {"fields": {"Assignee": ["Grace", "Ada"]}}, True),
        ("fields.Priority: [P0, P1]", {"fields": {"Priority": "P1"}}, True),
        ("fields.Priority: [P0, P1]", {"fields": {"Priority": "P3"}}, False),
        ("fields.Priority: {not: P3}", {"fields": {"Priority": "P1"}}, True),
        ("fields.Title: {glob: 'Release *'}", {"fields": {"Title": "Release 1.2"}}, True),
        ("fields.Title: {regex: '^v\\d+'}", {"fields": {"Title": "v12"}}, True),
        ("fields.Title: {regex: '^v\\d+'}", {"fields": {"Title": "x12"}}, False),
        ("fields.Points: {gte: 3, lt: 8}", {"fields": {"Points": 5}}, True),
        ("fields.Points: {gte: 3, lt: 8}", {"fields": {"Points": 8}}, False),
        ("fields.Due: {exists: true}", {"fields": {"Due": "2026-11-30"}}, True),
        ("fields.Due: {exists: false}", {"fields": {}}, True),
        (
            "changes.Status: {to: Done}",
            {"changes": {"Status": {"from": "In progress", "to": "Done"}}},
            True,
        ),
        (
            "changes.Status: {from: Todo, to: Done}",
            {"changes": {"Status": {"from": "In progress", "to": "Done"}}},
            False,
        ),
        (
            "changes.Assignee: {changed: true}",
            {"changes": {"Assignee": {"from": [], "to": ["Ada"]}}},
            True,
        ),
        ("changes.Assignee: {changed: true}", {"changes": {}}, False),
        ("entity.kind: issue", {}, True),
        ("source: {glob: 'github/o/*'}", {}, True),
    ],
)
def test_where_conditions(tmp_path: Path, where: str, data: dict[str, Any], matches: bool) -> None:
    ruleset = _ruleset(
        tmp_path,
        f"rules:\n  - id: a\n    on: github.issues.opened\n"
        f"    where:\n      {where}\n    actions:\n{LOG_ACTION}",
    )
    assert bool(match_rules(ruleset, _event(**data))) is matches


def test_when_expression_decides(tmp_path: Path) -> None:
    ruleset = _ruleset(
        tmp_path,
        "rules:\n  - id: a\n    on: github.issues.opened\n"
        "    when: \"{{ event.data.fields.Priority in ['P0', 'P1'] }}\"\n"
        f"    actions:\n{LOG_ACTION}",
    )
    assert match_rules(ruleset, _event(fields={"Priority": "P0"}))
    assert not match_rules(ruleset, _event(fields={"Priority": "P2"}))
    assert not match_rules(ruleset, _event(fields={}))  # undefined: no match, no crash


def test_actions_render_templates_against_the_event(tmp_path: Path) -> None:
    ruleset = _ruleset(
        tmp_path,
        """rules:
  - id: a
    on: github.issues.opened
    actions:
      - discord:
          channel: tasks
          content: "{{ event.data.entity.title }} by {{ event.data.actor.name }}"
          embed: {title: "{{ rule.id }}", url: "{{ event.data.entity.url }}"}
""",
    )
    [(index, action)] = render_actions(ruleset.rules[0], _event())
    assert index == 0
    assert action == RenderedAction(
        connector="discord",
        operation=None,
        destination="tasks",
        params={
            "channel": "tasks",
            "content": "Fix it by Ada",
            "embed": {"title": "a", "url": "https://x/1"},
        },
    )


@pytest.mark.parametrize(
    "payload",
    [
        "{{ 7*7 }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{% for x in range(10**9) %}{% endfor %}",
        "{{ config }}{{ self }}",
    ],
)
def test_event_data_is_rendered_literally_never_as_a_template(tmp_path: Path, payload: str) -> None:
    ruleset = _ruleset(
        tmp_path,
        "rules:\n  - id: a\n    on: github.issues.opened\n    actions:\n"
        "      - log: {to: inbox, message: 'Title: {{ event.data.entity.title }}'}\n",
    )
    event = _event(entity={"kind": "page", "id": "p", "url": None, "title": payload})
    [(_, action)] = render_actions(ruleset.rules[0], event)
    assert isinstance(action, RenderedAction)
    assert action.params["message"] == f"Title: {payload}"


def test_sandbox_blocks_unsafe_attribute_access_in_rule_templates(tmp_path: Path) -> None:
    ruleset = _ruleset(
        tmp_path,
        "rules:\n  - id: a\n    on: github.issues.opened\n    actions:\n"
        "      - log: {to: inbox, message: \"{{ ''.__class__.__mro__ }}\"}\n",
    )
    [(_, result)] = render_actions(ruleset.rules[0], _event())
    assert isinstance(result, RenderProblem)


def test_undefined_name_in_a_template_is_a_render_problem_not_a_crash(tmp_path: Path) -> None:
    ruleset = _ruleset(
        tmp_path,
        "rules:\n  - id: a\n    on: github.issues.opened\n    actions:\n"
        "      - log: {to: inbox, message: '{{ event.data.fields.missing }}'}\n",
    )
    [(_, result)] = render_actions(ruleset.rules[0], _event())
    assert isinstance(result, RenderProblem)
    assert "missing" in result.message


def test_shipped_demo_rules_load_against_the_example_config() -> None:
    from hub.config import load_settings

    repo = Path(__file__).resolve().parents[2]
    settings = load_settings(
        repo / "switchboard.example.yaml",
        environ={"SWITCHBOARD_SECRET_GITHUB": "x" * 8},
        plugins=PLUGINS,
    )
    ruleset = load_ruleset(
        settings.rules_path,
        connectors=PLUGINS.connectors,
        destinations=settings.destinations,
        engine=TemplateEngine(),
    )
    assert {r.id for r in ruleset.rules} >= {"github-issue-opened", "github-pr-merged"}


def test_undefined_name_in_an_action_template_is_located(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        "rules:\n  - id: a\n    on: x.y\n    actions:\n"
        "      - log: {to: inbox, message: '{{ evnt.id }}'}\n",
    )
    assert message == (
        "r.yaml:5:9: undefined name evnt in template; templates can use: event, people, rule"
    )


def test_undefined_name_in_when_is_located(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        f"rules:\n  - id: a\n    on: x.y\n    when: 'events | length'\n    actions:\n{LOG_ACTION}",
    )
    assert message == (
        "r.yaml:4:5: undefined name events in template; templates can use: event, rule"
    )


def test_group_rules_may_use_events_and_group(tmp_path: Path) -> None:
    ruleset = _ruleset(
        tmp_path,
        "rules:\n  - id: a\n    on: x.y\n    group: {window: 1h}\n    actions:\n"
        "      - log: {to: inbox, message: '{{ group.count }} {{ events | length }}'}\n",
    )
    assert ruleset.rules[0].group is not None


def test_bad_duration_says_how_to_write_one(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        "rules:\n  - id: a\n    on: x.y\n    throttle: {per: 5 minutes}\n"
        f"    actions:\n{LOG_ACTION}",
    )
    assert message == (
        "r.yaml:4:16: '5 minutes' is not a duration; write seconds (90) or a number with a unit: "
        "90s, 5m, 2h, 1d, 1w, 1h30m"
    )


def test_use_of_an_unknown_template_lists_the_defined_ones(tmp_path: Path) -> None:
    message = _error(
        tmp_path,
        "templates:\n  card: {message: hi}\nrules:\n  - id: a\n    on: x.y\n    actions:\n"
        "      - log: {use: crad, to: inbox}\n",
    )
    assert message == "r.yaml:7:15: template 'crad' is not defined; defined templates: card"


def test_use_merges_a_template_under_explicit_params(tmp_path: Path) -> None:
    ruleset = _ruleset(
        tmp_path,
        "templates:\n  card: {to: inbox, message: 'from template {{ event.id }}'}\nrules:\n"
        "  - id: a\n    on: github.issues.opened\n    actions:\n      - log: {use: card}\n"
        "      - log: {use: card, message: override}\n",
    )
    rendered = [a for _, a in render_actions(ruleset.rules[0], _event())]
    assert [a.params for a in rendered if isinstance(a, RenderedAction)] == [
        {"to": "inbox", "message": "from template ev-1"},
        {"to": "inbox", "message": "override"},
    ]


def test_source_globs_restrict_a_rule(tmp_path: Path) -> None:
    ruleset = _ruleset(
        tmp_path,
        "rules:\n  - id: a\n    on: github.*\n    source: github/acme/*\n"
        f"    actions:\n{LOG_ACTION}",
    )
    assert not match_rules(ruleset, _event())  # source github/o/r
    assert match_rules(ruleset, {**_event(), "source": "github/acme/site"})
