"""switchboard.yaml loading: typed settings, secrets by reference, located errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hub.config import load_settings_text
from hub.errors import ConfigError
from hub.plugins import load_plugins
from hub.rules.categories import categorize, train_categories
from hub.secrets import Secret

PLUGINS = load_plugins()
BASE = """
sources:
  github: {secret: {env: GH_SECRET}}
destinations:
  tasks: {connector: discord, webhook_url: {env: HOOK_URL, optional: true}}
  inbox: {connector: log, path: inbox.log}
"""


def _load(
    text: str, environ: dict[str, str] | None = None, tmp: Path = Path("/srv/switchboard")
) -> object:
    return load_settings_text(text, environ=environ or {}, plugins=PLUGINS, base_dir=tmp)


def _error(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        _load(text, environ)
    return str(info.value)


def test_valid_config_becomes_typed_settings_with_masked_secrets() -> None:
    settings = load_settings_text(
        BASE, environ={"GH_SECRET": "s3cr3t-value"}, plugins=PLUGINS, base_dir=Path("/srv/hub")
    )
    secret = settings.sources["github"].secret
    assert isinstance(secret, Secret)
    assert secret.reveal() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings)
    assert str(secret) == "**********"
    assert settings.database_url == "sqlite:////srv/hub/var/switchboard.db"
    assert settings.is_embedded
    assert settings.destinations["tasks"].disabled_reason == "webhook_url is not set (HOOK_URL)"
    assert settings.destinations["inbox"].disabled_reason is None
    assert settings.secret_values() == frozenset({"s3cr3t-value"})


def test_environment_overrides_store_and_broker_urls() -> None:
    settings = load_settings_text(
        BASE,
        environ={
            "GH_SECRET": "x" * 8,
            "SWITCHBOARD_DATABASE_URL": "postgresql://db/test",
            "SWITCHBOARD_REDIS_URL": "redis://127.0.0.1:6379/3",
        },
        plugins=PLUGINS,
        base_dir=Path("/srv"),
    )
    assert settings.database_url == "postgresql://db/test"
    assert settings.broker_url == "redis://127.0.0.1:6379/3"
    assert not settings.is_embedded


def test_a_limits_url_is_a_redis_url_from_the_config_or_the_environment() -> None:
    rabbit = BASE + "broker:\n  url: amqp://guest:guest@mq:5672/%2F\n"
    settings = _load(rabbit + "  limits_url: redis://redis:6379/1\n", {"GH_SECRET": "x" * 8})
    assert settings.limits_url == "redis://redis:6379/1"  # type: ignore[attr-defined]
    settings = _load(rabbit, {"GH_SECRET": "x" * 8, "SWITCHBOARD_LIMITS_URL": "redis://r:6379"})
    assert settings.limits_url == "redis://r:6379"  # type: ignore[attr-defined]
    assert _load(BASE, {"GH_SECRET": "x" * 8}).limits_url is None  # type: ignore[attr-defined]
    message = _error(rabbit + "  limits_url: amqp://mq:5672\n", {"GH_SECRET": "x" * 8})
    assert "limits_url" in message


def test_source_secret_defaults_to_switchboard_secret_env_var() -> None:
    settings = _load("sources:\n  github: {}\n", {"SWITCHBOARD_SECRET_GITHUB": "abcdefgh"})
    assert settings.sources["github"].secret.reveal() == "abcdefgh"  # type: ignore[attr-defined]


def test_secret_from_file(tmp_path: Path) -> None:
    (tmp_path / "gh.secret").write_text("from-file-secret\n")
    settings = load_settings_text(
        "sources:\n  github: {secret: {file: gh.secret}}\n",
        environ={},
        plugins=PLUGINS,
        base_dir=tmp_path,
    )
    assert settings.sources["github"].secret.reveal() == "from-file-secret"  # type: ignore[union-attr]


def test_both_var_and_var_file_set_is_an_error() -> None:
    message = _error(
        "sources:\n  github: {}\n",
        {"SWITCHBOARD_SECRET_GITHUB": "a" * 8, "SWITCHBOARD_SECRET_GITHUB_FILE": "/x"},
    )
    assert message == (
        "switchboard.yaml:2:3: sources.github: both SWITCHBOARD_SECRET_GITHUB and "
        "SWITCHBOARD_SECRET_GITHUB_FILE are set; unset one of them"
    )


def test_missing_secret_names_the_variable_and_how_to_set_it() -> None:
    assert _error("sources:\n  github: {}\n") == (
        "switchboard.yaml:2:3: sources.github: environment variable SWITCHBOARD_SECRET_GITHUB "
        "is not set; export SWITCHBOARD_SECRET_GITHUB=... or SWITCHBOARD_SECRET_GITHUB_FILE="
        "/path/to/file"
    )


def test_unknown_key_is_located_and_lists_allowed_keys() -> None:
    assert _error("server:\n  prot: 8000\n") == (
        "switchboard.yaml:2:3: unknown key 'prot' in server; "
        "allowed keys: group_commit, host, max_body_bytes, port, public_url, trusted_proxies"
    )


def test_wrong_type_points_at_the_value() -> None:
    assert _error("server:\n  port: eighty\n") == (
        "switchboard.yaml:2:9: server.port: 'eighty' is not of type 'integer'"
    )


def test_all_errors_are_reported_at_once_sorted_by_line() -> None:
    message = _error("server:\n  port: 0\nworker:\n  threads: 0\n")
    assert message.splitlines() == [
        "switchboard.yaml:2:9: server.port: 0 is less than the minimum of 1",
        "switchboard.yaml:4:12: worker.threads: 0 is less than the minimum of 1",
    ]


def test_unknown_connector_in_destination_lists_installed_ones() -> None:
    message = _error("destinations:\n  x: {connector: pager}\n")
    assert message.startswith(
        "switchboard.yaml:2:7: destination 'x' uses unknown connector "
        "'pager'; installed connectors: "
    )
    assert "discord" in message
    assert "log" in message


def test_destination_settings_are_checked_against_the_connector_schema() -> None:
    message = _error("destinations:\n  x: {connector: discord, webhook_url: https://plain}\n")
    assert message.startswith("switchboard.yaml:2:40: destinations.x.webhook_url:")


def test_unknown_source_is_an_error() -> None:
    message = _error("sources:\n  gitlab: {}\n")
    assert message.startswith("switchboard.yaml:2:3: unknown source 'gitlab'; installed sources:")


def test_duplicate_yaml_key_is_an_error() -> None:
    assert _error("server:\n  port: 1\n  port: 2\n") == (
        "switchboard.yaml:3:3: duplicate key 'port'; each key may appear once"
    )


def test_yaml_syntax_error_is_located() -> None:
    message = _error("server: [\n")
    assert message.startswith("switchboard.yaml:2:1: invalid YAML:")


def test_categories_learn_from_the_examples_file_beside_the_config(tmp_path: Path) -> None:
    # given a team's closed tasks as labelled examples, and categories with no keyword for
    # the words those tasks use
    (tmp_path / "closed.jsonl").write_text(
        "\n".join(
            json.dumps({"category": category, "title": title, "description": ""})
            for category, title in [
                ("billing", "Refund the duplicate invoice charge"),
                ("billing", "Invoice totals wrong after a plan downgrade"),
                ("billing", "Prorate the refund for annual plans"),
                ("hiring", "Schedule the onsite interview loop"),
                ("hiring", "Post the backend engineer job opening"),
                ("hiring", "Send the offer letter to the candidate"),
            ]
        ),
        encoding="utf-8",
    )
    text = BASE + "categories_examples: closed.jsonl\n"
    text += "categories:\n  - {name: billing}\n  - {name: hiring}\n"
    settings = _load(text, {"GH_SECRET": "x"}, tmp_path)
    # when a new task arrives, then the classifier trained on the file places it
    document = {
        "data": {"entity": {"title": "Refund the invoice for the annual plan"}, "fields": {}}
    }
    categories = train_categories(settings.categories)  # type: ignore[attr-defined]
    assert categorize(document, categories) == "billing"
    # and a missing file is a located config error
    error = _error(BASE + "categories_examples: nowhere.jsonl\n", {"GH_SECRET": "x"})
    assert "categories_examples: cannot read" in error
