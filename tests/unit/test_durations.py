"""The one duration grammar (`connectors.base.parse_duration`) and what each user of it says."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors._gcal_event import event_body
from connectors.base import Destination, parse_duration
from connectors.toggl import parse_duration_s
from hub.cli import _parser
from hub.config import load_settings_text
from hub.errors import ConfigError
from hub.pipeline.queries import query_store
from hub.plugins import load_plugins
from hub.sources.base import QueryFailed
from hub.store import open_store
from tests.support import rules_error

PLUGINS = load_plugins()
HINT = "write seconds (90) or a number with a unit: 90s, 5m, 2h, 1d, 1w, 1h30m"


@pytest.mark.parametrize(
    ("written", "seconds"),
    [
        (90, 90),
        (1.5, 1.5),
        ("90", 90),
        ("90s", 90),
        ("500ms", 0.5),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("2d", 172800),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1m30s", 90),
        ("1d12h", 129600),
        ("1.5h", 5400),
        (" 1h 30m ", 5400),
        ("2H", 7200),
        ("0s", 0),
    ],
)
def test_the_grammar_reads(written: object, seconds: float) -> None:
    assert parse_duration(written) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "written",
    ["", "h", "5", "5 minutes", "30min", "1y", "-5", "-5s", "1h-30m", "PT1H", "1e3s", "nan"],
)
def test_what_is_not_a_duration_is_refused_saying_how_to_write_one(written: str) -> None:
    if written == "5":  # bare digits are seconds: the one exception in the list
        assert parse_duration(written) == timedelta(seconds=5)
        return
    with pytest.raises(ValueError, match="is not a duration") as info:
        parse_duration(written)
    assert str(info.value) == f"{written!r} is not a duration; {HINT}"


@pytest.mark.parametrize("written", [-1, float("nan"), float("inf"), True, None, [1], {"h": 1}])
def test_values_that_are_not_durations_are_refused(written: Any) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(written)


def test_a_duration_too_long_for_timedelta_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="too long for a duration"):
        parse_duration("99999999999w")


# --- every place that reads a duration says where, in the same words ------------------------


def test_rules_locate_the_bad_duration(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "rules:\n  - id: a\n    on: x.y\n    throttle: {per: 5 minutes}\n"
        "    actions:\n      - log: {to: inbox, message: hi}\n"
    )
    inbox = Destination(name="inbox", connector="log")
    assert rules_error(tmp_path, {"inbox": inbox}) == (
        f"r.yaml:4:16: '5 minutes' is not a duration; {HINT}"
    )


def test_config_names_the_destination_with_the_bad_duration() -> None:
    text = "destinations:\n  inbox: {connector: log, path: inbox.log, retry: {max_age: 2 days}}\n"
    with pytest.raises(ConfigError) as info:
        load_settings_text(text, environ={}, plugins=PLUGINS, base_dir=Path("/srv"))
    assert str(info.value).endswith(f"destinations.inbox: '2 days' is not a duration; {HINT}")


def test_config_reads_two_days_as_the_rules_do() -> None:
    text = "destinations:\n  inbox: {connector: log, path: inbox.log, retry: {max_age: 2d}}\n"
    settings = load_settings_text(text, environ={}, plugins=PLUGINS, base_dir=Path("/srv"))
    assert settings.policies["inbox"].max_age_s == 172800


def test_cli_refuses_a_bad_duration_as_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(["replay", "--dead", "--since", "yesterday"])
    assert info.value.code == 2
    assert f"argument --since: 'yesterday' is not a duration; {HINT}" in capsys.readouterr().err


def test_store_queries_refuse_a_bad_since() -> None:
    store = open_store("sqlite://")
    store.create_schema()
    with pytest.raises(QueryFailed) as info:
        query_store(store, {"events": "*", "since": "last week"}, 0.0)
    assert str(info.value) == f"store.query: 'last week' is not a duration; {HINT}"


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("45x", f"'45x' is not a duration; {HINT}"),
        ("0s", "duration '0s' must be at least one second"),
    ],
)
def test_gcal_event_duration_errors(written: str, message: str) -> None:
    params = {"start": "2026-11-24T15:00:00+01:00", "duration": written}
    with pytest.raises(ValueError, match="duration") as info:
        event_body(params, event_id="e", operation="create", default_timezone=None, private={})
    assert str(info.value) == message


def test_gcal_and_toggl_read_the_same_grammar() -> None:
    params = {"start": "2026-11-24T15:00:00+01:00", "duration": "2d"}
    body = event_body(params, event_id="e", operation="create", default_timezone=None, private={})
    assert body["end"]["dateTime"] == "2026-11-26T15:00:00+01:00"
    assert parse_duration_s("2d") == 172800  # toggl read only h/m/s before


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("1x", f"'1x' is not a duration; {HINT}"),
        ("400ms", "duration '400ms' must be at least one second"),
    ],
)
def test_toggl_duration_errors(written: str, message: str) -> None:
    with pytest.raises(ValueError, match="duration") as info:
        parse_duration_s(written)
    assert str(info.value) == message
