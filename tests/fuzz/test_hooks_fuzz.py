"""Hostile input at every /hooks/* endpoint, through the real app with lifespan running.

Whatever arrives: never a 5xx, never a traceback in the logs, nothing stored unless it was
authentic, and an authentic but nonsensical body is accepted or refused with 400, and
then normalizes to events or to the documented MalformedPayload, never to a crash.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from typing import Any

import httpx
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.errors import MalformedPayload
from tests.fuzz.hub import MAX_BODY_BYTES, SOURCES, Hub, running_hub, signed_headers
from tests.fuzz.strategies import (
    CONTENT_TYPES,
    ODD_BODIES,
    automation_payloads,
    bodies,
    discord_payloads,
    github_payloads,
    notion_payloads,
    raw_headers,
    slack_payloads,
)
from tests.support import REPO

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: What an authentic request may get: accepted (202, or 200 with a protocol reply) or 400.
AUTHENTIC_ANSWERS = (200, 202, 400)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    with running_hub(tmp_path_factory.mktemp("fuzz")) as running:
        yield running


@cache
def _event_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((REPO / "schemas" / "event.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def _assert_clean_answer(hub: Hub, response: httpx.Response, logs_before: int) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        answer = response.json()
        assert set(answer) == {"code", "message"}, answer
        assert "Traceback" not in response.text
    _assert_no_problems_logged(hub, logs_before)


def _assert_no_problems_logged(hub: Hub, logs_before: int) -> None:
    broken = hub.problems(since=logs_before)
    assert not broken, broken


def _send_signed(hub: Hub, source: str, body: bytes, **extra: str) -> None:
    """Post an authentic request and check everything that follows from the answer."""
    headers = {
        **signed_headers(source, body, now_s=hub.now_s(), **extra),
        "Content-Type": _content_type(source, body),
    }
    stored_before, logs_before = hub.count(), len(hub.logs.records)
    response = hub.post(source, body, headers)
    _assert_clean_answer(hub, response, logs_before)
    assert response.status_code in AUTHENTIC_ANSWERS, (response.status_code, response.text)
    event_id = _stored_id(response)
    if event_id is None:
        assert hub.count() == stored_before, "a refused or protocol-only request was stored"
        return
    _assert_normalizes_cleanly(hub, event_id)


def _content_type(source: str, body: bytes) -> str:
    if source == "slack" and not body.lstrip().startswith(b"{"):
        return "application/x-www-form-urlencoded"
    return "application/json"


def _stored_id(response: httpx.Response) -> str | None:
    if response.status_code >= 400:
        return None
    header = response.headers.get("x-switchboard-event-id")
    if header:
        return str(header)
    answer = response.json()
    return str(answer["id"]) if "id" in answer and set(answer) <= {"id", "duplicate"} else None


def _assert_normalizes_cleanly(hub: Hub, event_id: str) -> None:
    result = hub.normalize(event_id)
    if not isinstance(result, MalformedPayload):
        for event in result:
            errors = sorted(_event_validator().iter_errors(event.to_dict()), key=str)
            assert not errors, [e.message for e in errors]
    logs_before = len(hub.logs.records)
    hub.process(event_id)  # must not raise: a bad event is marked failed, replayable
    row = hub.runtime.store.get_event(event_id)
    assert row is not None
    assert row.status in ("processed", "failed"), row.status
    if isinstance(result, MalformedPayload):
        assert row.status == "failed"
    else:  # a lone surrogate escape is read as U+FFFD: every event encodes as UTF-8
        for event in result:
            json.dumps(event.to_dict(), ensure_ascii=False).encode("utf-8")
    for response in hub.views(event_id):
        assert response.status_code == 200, (response.url, response.text[:500])
    _assert_no_problems_logged(hub, logs_before)


# --- unsigned noise ------------------------------------------------------------------------


@FUZZ
@given(
    source=st.sampled_from([*SOURCES, "unknown"]),
    body=bodies(),
    headers=raw_headers,
    content_type=st.sampled_from(CONTENT_TYPES),
    chunk_bytes=st.integers(min_value=1, max_value=4096),
)
def test_unsigned_random_requests_are_refused_cleanly_and_store_nothing(
    hub: Hub,
    source: str,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
    content_type: str | None,
    chunk_bytes: int,
) -> None:
    # Raw header bytes and a body arriving in pieces, as a server hands them to the app.
    sent = [h for h in headers if h[0] != b"content-type"]
    if content_type is not None:
        sent.append((b"content-type", content_type.encode()))
    chunks = iter([body[i : i + chunk_bytes] for i in range(0, len(body), chunk_bytes)])
    stored_before, logs_before = hub.count(), len(hub.logs.records)

    status, answer = hub.stream(source, sent, chunks)

    assert status < 500, answer
    if status >= 400:
        assert set(json.loads(answer)) == {"code", "message"}, answer
    _assert_no_problems_logged(hub, logs_before)
    assert hub.count() == stored_before


# --- authentic nonsense ----------------------------------------------------------------------


@FUZZ
@given(source=st.sampled_from(SOURCES), body=bodies())
def test_signed_random_bodies_are_accepted_or_refused_with_400(
    hub: Hub, source: str, body: bytes
) -> None:
    _send_signed(hub, source, body)


@pytest.mark.parametrize("name", sorted(ODD_BODIES))
@pytest.mark.parametrize("source", SOURCES)
def test_signed_odd_bodies_never_crash(hub: Hub, source: str, name: str) -> None:
    _send_signed(hub, source, ODD_BODIES[name])


@FUZZ
@given(payload=github_payloads(), delivery=st.uuids())
def test_signed_mutated_github_payloads_normalize_or_are_refused(
    hub: Hub, payload: tuple[str, bytes], delivery: Any
) -> None:
    event, body = payload
    _send_signed(hub, "github", body, event=event, delivery=str(delivery))


@FUZZ
@given(body=notion_payloads())
def test_signed_mutated_notion_payloads_normalize_or_are_refused(hub: Hub, body: bytes) -> None:
    _send_signed(hub, "notion", body)


@FUZZ
@given(body=automation_payloads())
def test_mutated_notion_automation_calls_normalize_or_are_refused(hub: Hub, body: bytes) -> None:
    _send_signed(hub, "notion-automation", body)


@FUZZ
@given(body=discord_payloads())
def test_signed_mutated_discord_interactions_normalize_or_are_refused(
    hub: Hub, body: bytes
) -> None:
    _send_signed(hub, "discord", body)


@FUZZ
@given(body=slack_payloads())
def test_signed_mutated_slack_requests_normalize_or_are_refused(hub: Hub, body: bytes) -> None:
    _send_signed(hub, "slack", body)


def test_gzip_content_encoding_is_not_inflated_and_is_refused_as_a_body(hub: Hub) -> None:
    body = ODD_BODIES["gzip-json"]
    headers = {
        **signed_headers("github", body, now_s=hub.now_s(), event="ping"),
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
    }
    stored_before = hub.count()

    response = hub.post("github", body, headers)

    # The signature covers the bytes sent; the hub never inflates (no zip bombs).
    assert response.status_code == 400
    assert response.json()["code"] == "bad_encoding"
    assert hub.count() == stored_before


# --- size cap ----------------------------------------------------------------------------------


class CountingBody:
    """A streamed body that counts how much of it the app pulled."""

    def __init__(self, total_bytes: int, chunk_bytes: int = 8192) -> None:
        self.chunk = b"x" * chunk_bytes
        self.chunks_left = total_bytes // chunk_bytes
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.chunks_left > 0:
            self.chunks_left -= 1
            self.pulled += len(self.chunk)
            yield self.chunk


@pytest.mark.parametrize("source", SOURCES)
def test_a_streamed_body_over_the_cap_is_refused_413_before_it_is_read(
    hub: Hub, source: str
) -> None:
    body = CountingBody(total_bytes=64 * MAX_BODY_BYTES)  # 4 MiB, no Content-Length
    headers = signed_headers(source, b"", now_s=hub.now_s())
    stored_before = hub.count()

    status, answer = hub.stream(source, headers, iter(body))

    assert status == 413
    assert json.loads(answer)["code"] == "payload_too_large"
    # One chunk past the cap at most: the rest of the 4 MiB is never pulled into memory.
    assert body.pulled <= MAX_BODY_BYTES + 8192, f"{body.pulled} bytes were read"
    assert hub.count() == stored_before


def test_a_declared_content_length_over_the_cap_is_refused_without_reading(hub: Hub) -> None:
    body = CountingBody(total_bytes=2 * MAX_BODY_BYTES)
    headers = {
        **signed_headers("github", b"", now_s=hub.now_s()),
        "Content-Length": str(2 * MAX_BODY_BYTES),
    }

    status, _ = hub.stream("github", headers, iter(body))

    assert status == 413
    assert body.pulled == 0


@pytest.mark.parametrize(
    "value",
    [b"\xb2", b"\xb9", b"-1", b"1e3", b" 12", b"0x10", b"", b"9" * 40, b"\xff\xfe"],
)
def test_odd_content_length_headers_never_crash(hub: Hub, value: bytes) -> None:
    # "²" (latin-1 0xb2) passes str.isdigit() but not int(): this was a 500.
    headers = [(b"content-length", value), (b"content-type", b"application/json")]

    status, answer = hub.stream("github", headers, iter([b"{}"]))

    assert status in (401, 413), answer
