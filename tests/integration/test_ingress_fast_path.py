"""The bare ASGI path for POST /hooks/{source} answers exactly as the Starlette route does.

Two hubs on two stores: one built by `create_app` (the fast path in front), one with the
fast path taken out, so the Starlette route answers. The same requests go to both as raw
ASGI calls; status, raw response headers (in order), body, stored rows, log lines and the
rejection counters must be the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient
from starlette.types import Message

from hub.app import create_app
from hub.errors import StoreError
from hub.ingress.fast import HookFastPath
from hub.plugins import load_plugins
from hub.runtime import build_runtime
from hub.store import NewInbound
from tests.support import fixture_path, github_headers, make_settings

ISSUE_OPENED = fixture_path("github", "issues", "opened.json").read_bytes()
LIMIT = 64 * 1024
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class Hub:
    def __init__(self, tmp_path: Path, *, fast: bool) -> None:
        tmp_path.mkdir()
        self.runtime = build_runtime(make_settings(tmp_path, max_body_bytes=LIMIT), load_plugins())
        app: Starlette = create_app(self.runtime, run_worker=False)
        if not fast:  # before the middleware stack is built (on the first call)
            kept = [m for m in app.user_middleware if getattr(m, "cls", None) is not HookFastPath]
            app.user_middleware = kept
        self.client = TestClient(app)

    def call(
        self,
        path: str,
        chunks: Sequence[bytes],
        headers: dict[str, str] | list[tuple[bytes, bytes]],
        *,
        method: str = "POST",
        query: bytes = b"",
    ) -> Answer:
        """One request as a server would make it: raw headers, the body in `chunks`."""
        portal = self.client.portal
        assert portal is not None
        raw = (
            [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
            if isinstance(headers, dict)
            else headers
        )
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query,
            "headers": raw,
            "client": ("10.1.2.3", 50000),
            "server": ("testserver", 80),
            "state": dict(self.client.app_state),
        }
        pending = list(chunks) or [b""]
        sent: list[Message] = []

        async def receive() -> Message:
            chunk = pending.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

        async def send(message: Message) -> None:
            sent.append(message)

        portal.call(self.client.app, scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return int(start["status"]), list(start["headers"]), body

    def rejected_metrics(self) -> list[str]:
        text = self.client.get("/metrics").text
        return sorted(
            x for x in text.splitlines() if x.startswith("switchboard_ingress_rejected_total")
        )


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[tuple[Hub, Hub]]:
    fast, slow = Hub(tmp_path / "fast", fast=True), Hub(tmp_path / "slow", fast=False)
    with fast.client, slow.client:
        yield fast, slow
    fast.runtime.close()
    slow.runtime.close()


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names the fast path answered (to prove it, not the router, did)."""
    names: list[str] = []
    answer = HookFastPath._answer

    async def spy(self: HookFastPath, scope: Any, receive: Any, name: str, state: Any) -> Any:
        names.append(name)
        return await answer(self, scope, receive, name, state)

    monkeypatch.setattr(HookFastPath, "_answer", spy)
    return names


def signed(body: bytes, delivery: str) -> dict[str, str]:
    return github_headers(body, event="issues", delivery=delivery)


BIG = b'{"pad": "' + b"x" * (LIMIT + 10) + b'"}'
CASES: dict[str, tuple[str, list[bytes], dict[str, str]]] = {
    "valid": ("/hooks/github", [ISSUE_OPENED], signed(ISSUE_OPENED, "eq-1")),
    "valid-in-chunks": (
        "/hooks/github",
        [ISSUE_OPENED[:5000], b"", ISSUE_OPENED[5000:]],
        signed(ISSUE_OPENED, "eq-2"),
    ),
    "bad-signature": (
        "/hooks/github",
        [ISSUE_OPENED],
        github_headers(ISSUE_OPENED, event="issues", delivery="eq-3", secret="wrong"),
    ),
    "no-signature": ("/hooks/github", [ISSUE_OPENED], {"X-GitHub-Event": "issues"}),
    "malformed-json": ("/hooks/github", [b"{not json"], signed(b"{not json", "eq-4")),
    "json-array": ("/hooks/github", [b"[1, 2]"], signed(b"[1, 2]", "eq-5")),
    "no-delivery-id": (
        "/hooks/github",
        [ISSUE_OPENED],
        {k: v for k, v in signed(ISSUE_OPENED, "x").items() if k != "X-GitHub-Delivery"},
    ),
    "oversize-declared": (
        "/hooks/github",
        [BIG],
        {**signed(BIG, "eq-6"), "Content-Length": str(len(BIG))},
    ),
    "oversize-lying-length": (
        "/hooks/github",
        [BIG[:30000], BIG[30000:]],
        {**signed(BIG, "eq-7"), "Content-Length": "100"},
    ),
    "oversize-no-length": ("/hooks/github", [b"x" * 8192] * 10, signed(b"", "eq-8")),
    "unknown-source": ("/hooks/gitlab", [b"{}"], {"Content-Type": "application/json"}),
    "unicode-unknown-source": ("/hooks/gitlabé", [b"{}"], {}),
    "builtin-source-refused": ("/hooks/schedule", [b"{}"], {}),
    "suffix-path": ("/hooks/github/extra", [ISSUE_OPENED], signed(ISSUE_OPENED, "eq-9")),
    "trailing-slash": ("/hooks/github/", [ISSUE_OPENED], signed(ISSUE_OPENED, "eq-10")),
    "no-source": ("/hooks/", [b"{}"], {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_fast_path_and_starlette_route_answer_the_same(
    hubs: tuple[Hub, Hub], case: str, caplog: pytest.LogCaptureFixture, taken: list[str]
) -> None:
    fast, slow = hubs
    path, chunks, headers = CASES[case]
    with caplog.at_level(logging.INFO, logger="switchboard.ingress"):
        answers = [hub.call(path, chunks, headers) for hub in (fast, slow)]
        # the same request again: a duplicate where the first was accepted
        again = [hub.call(path, chunks, headers) for hub in (fast, slow)]
    assert answers[0] == answers[1]
    assert again[0] == again[1]
    logged = [r.getMessage() for r in caplog.records if r.name == "switchboard.ingress"]
    assert logged[0::2] == logged[1::2]  # fast, slow, fast, slow: the same lines
    assert fast.runtime.store.count_events() == slow.runtime.store.count_events()
    assert fast.rejected_metrics() == slow.rejected_metrics()
    # the fast hub's two calls took the fast path, unless the path has more than a name
    assert len(taken) == (0 if case in ("suffix-path", "trailing-slash", "no-source") else 2)


def test_valid_duplicate_and_refusals_are_answered_by_the_fast_path(
    hubs: tuple[Hub, Hub], taken: list[str]
) -> None:
    fast, _ = hubs
    first = fast.call("/hooks/github", [ISSUE_OPENED], signed(ISSUE_OPENED, "d-1"))
    again = fast.call("/hooks/github", [ISSUE_OPENED], signed(ISSUE_OPENED, "d-1"))
    bad = fast.call("/hooks/github", [b"{}"], {"X-GitHub-Event": "issues"})
    assert (first[0], again[0], bad[0]) == (202, 200, 401)
    assert first[1] == [(b"content-length", b"45"), (b"content-type", b"application/json")]
    assert again[2] == first[2].replace(b'"}', b'","duplicate":true}')
    assert taken == ["github", "github", "github"]
    row = fast.runtime.store.get_event(first[2].decode()[7:-2])
    assert row is not None
    assert row.body == ISSUE_OPENED


def test_other_routes_methods_and_suffixes_pass_through(
    hubs: tuple[Hub, Hub], taken: list[str]
) -> None:
    fast, slow = hubs
    for method, path in [("GET", "/hooks/github"), ("PUT", "/hooks/github"), ("GET", "/healthz")]:
        assert fast.call(path, [b""], {}, method=method) == slow.call(
            path, [b""], {}, method=method
        )
    fast.call("/hooks/github/x", [ISSUE_OPENED], signed(ISSUE_OPENED, "s-1"))
    assert taken == []


def test_query_string_and_repeated_headers_are_seen_as_by_the_route(
    hubs: tuple[Hub, Hub],
) -> None:
    fast, slow = hubs
    raw = [(k.lower().encode(), v.encode()) for k, v in signed(ISSUE_OPENED, "q-1").items()]
    raw += [(b"x-extra", b"one"), (b"x-extra", b"two"), (b"content-length", b"99999999")]
    answers = [h.call("/hooks/github", [ISSUE_OPENED], raw, query=b"a=1&a=2&b=") for h in hubs]
    assert answers[0] == answers[1]
    assert answers[0][0] == 413  # the first Content-Length counts, as with Request.headers
    raw = raw[:-1]
    answers = [h.call("/hooks/github", [ISSUE_OPENED], raw, query=b"a=1&a=2&b=") for h in hubs]
    assert answers[0] == answers[1]
    event_id = answers[0][2].decode()[7:-2]
    rows = [h.runtime.store.get_event(event_id) for h in (fast, slow)]
    assert rows[0] is not None
    assert rows[1] is not None
    assert rows[0].headers == rows[1].headers
    assert rows[0].headers["x-extra"] == "two"


def test_store_down_is_the_same_503(hubs: tuple[Hub, Hub], monkeypatch: pytest.MonkeyPatch) -> None:
    def down(batch: Sequence[NewInbound]) -> None:
        raise StoreError("could not store accepted events: OperationalError: disk I/O error")

    for hub in hubs:
        monkeypatch.setattr(hub.runtime.store, "insert_events", down)
    answers = [h.call("/hooks/github", [ISSUE_OPENED], signed(ISSUE_OPENED, "z")) for h in hubs]
    assert answers[0] == answers[1]
    assert answers[0][0] == 503
    assert (b"retry-after", b"5") in answers[0][1]
