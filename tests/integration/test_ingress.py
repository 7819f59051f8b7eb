"""Ingress through the real app (lifespan running): what is accepted, refused, stored."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from hub.app import create_app
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from tests.support import fixture_path, github_headers, make_settings


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = build_runtime(make_settings(tmp_path, max_body_bytes=64 * 1024), load_plugins())
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    # No worker: these tests look at what ingress stored, before anything processes it.
    with TestClient(create_app(runtime, run_worker=False)) as test_client:
        yield test_client


ISSUE_OPENED = fixture_path("github", "issues", "opened.json").read_bytes()


def test_signed_github_event_is_stored_and_answered_202(
    client: TestClient, runtime: Runtime
) -> None:
    response = client.post(
        "/hooks/github",
        content=ISSUE_OPENED,
        headers=github_headers(ISSUE_OPENED, event="issues", delivery="d-1"),
    )
    assert response.status_code == 202
    event_id = response.json()["id"]
    row = runtime.store.get_event(event_id)
    assert row is not None
    assert row.status == "received"
    assert row.body == ISSUE_OPENED
    assert row.headers["x-github-event"] == "issues"


def test_duplicate_provider_delivery_id_answers_200_with_the_first_id_and_stores_once(
    client: TestClient, runtime: Runtime
) -> None:
    headers = github_headers(ISSUE_OPENED, event="issues", delivery="same-delivery")
    first = client.post("/hooks/github", content=ISSUE_OPENED, headers=headers)
    second = client.post("/hooks/github", content=ISSUE_OPENED, headers=headers)
    assert first.status_code == 202
    assert second.status_code == 200
    assert second.json() == {"id": first.json()["id"], "duplicate": True}
    assert runtime.store.count_events() == 1


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        pytest.param(
            {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "x"},
            ISSUE_OPENED,
            401,
            "bad_signature",
            id="missing-signature",
        ),
        pytest.param(
            {**github_headers(ISSUE_OPENED, event="issues", delivery="x", secret="wrong-secret")},
            ISSUE_OPENED,
            401,
            "bad_signature",
            id="wrong-secret",
        ),
        pytest.param(
            github_headers(ISSUE_OPENED, event="issues", delivery="x"),
            ISSUE_OPENED.replace(b"Spelling", b"Smelling"),
            401,
            "bad_signature",
            id="tampered-body",
        ),
        pytest.param(
            github_headers(b"{not json", event="issues", delivery="x"),
            b"{not json",
            400,
            "bad_json",
            id="malformed-json",
        ),
        pytest.param(
            github_headers(b"[1, 2]", event="issues", delivery="x"),
            b"[1, 2]",
            400,
            "bad_json",
            id="json-array",
        ),
        pytest.param(
            {
                k: v
                for k, v in github_headers(ISSUE_OPENED, event="issues", delivery="x").items()
                if k != "X-GitHub-Delivery"
            },
            ISSUE_OPENED,
            400,
            "malformed_payload",
            id="missing-delivery-id",
        ),
    ],
)
def test_bad_requests_are_refused_with_a_clear_code_and_nothing_is_stored(
    client: TestClient,
    runtime: Runtime,
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    response = client.post("/hooks/github", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert runtime.store.count_events() == 0


def test_unknown_source_is_404_and_names_the_enabled_ones(
    client: TestClient, runtime: Runtime
) -> None:
    response = client.post("/hooks/gitlab", content=b"{}")
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_source"
    assert "github" in response.json()["message"]
    assert runtime.store.count_events() == 0


def test_oversize_body_with_content_length_is_413(client: TestClient, runtime: Runtime) -> None:
    body = b'{"pad": "' + b"x" * (70 * 1024) + b'"}'
    response = client.post(
        "/hooks/github", content=body, headers=github_headers(body, event="issues", delivery="big")
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert runtime.store.count_events() == 0


def test_oversize_streamed_body_without_content_length_is_413(
    client: TestClient, runtime: Runtime
) -> None:
    chunk = b"x" * 8192

    def chunks() -> Iterator[bytes]:
        for _ in range(20):  # 160 KiB, over the 64 KiB limit, with no Content-Length
            yield chunk

    headers = github_headers(b"", event="issues", delivery="stream")
    response = client.post("/hooks/github", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert runtime.store.count_events() == 0


def test_get_on_a_hook_is_405(client: TestClient) -> None:
    assert client.get("/hooks/github").status_code == 405


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}


def test_group_commit_on_the_loop_stores_and_deduplicates_as_in_a_thread(tmp_path: Path) -> None:
    # given `server.group_commit: loop` (the commit runs on the event loop, no thread hop)
    settings = make_settings(tmp_path, max_body_bytes=64 * 1024)
    settings = replace(settings, server=replace(settings.server, group_commit="loop"))
    rt = build_runtime(settings, load_plugins())
    try:
        with TestClient(create_app(rt, run_worker=False)) as client:
            headers = github_headers(ISSUE_OPENED, event="issues", delivery="on-the-loop")
            first = client.post("/hooks/github", content=ISSUE_OPENED, headers=headers)
            again = client.post("/hooks/github", content=ISSUE_OPENED, headers=headers)
        # then the event is durable when answered, and a retry is a duplicate
        assert (first.status_code, again.status_code) == (202, 200)
        row = rt.store.get_event(first.json()["id"])
        assert row is not None
        assert row.body == ISSUE_OPENED
        assert rt.store.count_events() == 1
    finally:
        rt.close()
