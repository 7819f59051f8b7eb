"""LogConnector: one JSON line per send under the config directory; write errors are failures."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors.base import ConnectorEnv, DeliveryContext, Destination, RenderedAction, SendResult
from connectors.log import LogConnector
from tests.connector_support import delivery_context, rendered_action

NOW = datetime(2026, 11, 21, 10, 0, 7, tzinfo=UTC)


def _destination(path: str, **options: Any) -> Destination:
    return Destination(name="inbox", connector="log", options={"path": path, **options})


def _context(destination: Destination | None, *, delivery_id: str = "dlv-1") -> DeliveryContext:
    return delivery_context(destination, now=NOW, rule_id="issue-opened", delivery_id=delivery_id)


def _action(message: str) -> RenderedAction:
    return rendered_action("log", "inbox", {"message": message}, destination_param="to")


def _send_all(
    base_dir: Path, sends: list[tuple[RenderedAction, DeliveryContext]]
) -> list[SendResult]:
    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"the log connector made a request to {request.url}")

    async def run() -> list[SendResult]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(no_network)) as http:
            connector = LogConnector(ConnectorEnv(http=http, base_dir=base_dir))
            return [await connector.send(action, ctx) for action, ctx in sends]

    return asyncio.run(run())


def _send(base_dir: Path, message: str, destination: Destination | None) -> SendResult:
    [result] = _send_all(base_dir, [(_action(message), _context(destination))])
    return result


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_send_appends_one_json_line_with_message_rule_and_delivery(tmp_path: Path) -> None:
    destination = _destination("inbox.log")

    results = _send_all(
        tmp_path,
        [
            (_action("github.issues.opened evt-1"), _context(destination, delivery_id="dlv-1")),
            (_action("github.issues.closed evt-2"), _context(destination, delivery_id="dlv-2")),
        ],
    )

    assert [r.outcome for r in results] == ["ok", "ok"]
    assert [r.ref for r in results] == ["inbox.log", "inbox.log"]
    assert _lines(tmp_path / "inbox.log") == [
        {
            "time": "2026-11-21T10:00:07+00:00",
            "delivery_id": "dlv-1",
            "event_id": "evt-1",
            "rule": "issue-opened",
            "message": "github.issues.opened evt-1",
        },
        {
            "time": "2026-11-21T10:00:07+00:00",
            "delivery_id": "dlv-2",
            "event_id": "evt-1",
            "rule": "issue-opened",
            "message": "github.issues.closed evt-2",
        },
    ]


def test_existing_lines_are_kept(tmp_path: Path) -> None:
    log = tmp_path / "inbox.log"
    log.write_text('{"message": "earlier"}\n', encoding="utf-8")

    result = _send(tmp_path, "later", _destination("inbox.log"))

    assert result.outcome == "ok"
    assert [line["message"] for line in _lines(log)] == ["earlier", "later"]


def test_path_is_relative_to_the_config_directory_and_parents_are_created(
    tmp_path: Path,
) -> None:
    result = _send(tmp_path, "hello", _destination("var/inbox/demo.log"))

    assert result.outcome == "ok"
    assert result.ref == "demo.log"
    assert _lines(tmp_path / "var" / "inbox" / "demo.log")[0]["message"] == "hello"


def test_multiline_and_non_ascii_message_stays_one_readable_line(tmp_path: Path) -> None:
    message = "Write launch post → Done\nby Ada"

    _send(tmp_path, message, _destination("inbox.log"))

    text = (tmp_path / "inbox.log").read_text(encoding="utf-8")
    assert text.count("\n") == 1
    assert "→" in text
    assert _lines(tmp_path / "inbox.log")[0]["message"] == message


def test_directory_in_the_way_of_the_file_fails(tmp_path: Path) -> None:
    (tmp_path / "inbox.log").mkdir()

    result = _send(tmp_path, "hello", _destination("inbox.log"))

    assert result.outcome == "fail"
    assert "cannot append" in result.reason
    assert str(tmp_path / "inbox.log") in result.reason


def test_file_in_the_way_of_the_parent_directory_fails(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("not a directory", encoding="utf-8")

    result = _send(tmp_path, "hello", _destination("var/inbox.log"))

    assert result.outcome == "fail"
    assert "cannot append" in result.reason
    assert (tmp_path / "var").read_text(encoding="utf-8") == "not a directory"


def test_missing_destination_fails_and_writes_nothing(tmp_path: Path) -> None:
    result = _send(tmp_path, "hello", None)

    assert result.outcome == "fail"
    assert "destination" in result.reason
    assert list(tmp_path.iterdir()) == []


def test_echo_also_prints_the_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = _send(tmp_path, "hello", _destination("inbox.log", echo=True))

    assert result.outcome == "ok"
    assert capsys.readouterr().out == "[issue-opened] hello\n"


def test_without_echo_nothing_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _send(tmp_path, "hello", _destination("inbox.log"))

    assert capsys.readouterr().out == ""


def test_a_lone_surrogate_in_the_message_is_written_as_a_replacement_character(
    tmp_path: Path,
) -> None:
    # Half an emoji, as a JSON `\ud83d` escape in a webhook decodes: UTF-8 cannot encode it.
    result = _send(tmp_path, "cut \ud83d here, whole \ud83d\ude00", _destination("inbox.log"))

    assert result.outcome == "ok"
    assert _lines(tmp_path / "inbox.log")[0]["message"] == "cut \ufffd here, whole \U0001f600"
