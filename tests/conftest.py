"""Fixtures shared by all suites: real Redis (skip locally when down, fail in CI), and the
fake Notion API and Discord webhook served on loopback, and the shipped example config."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hub.runtime import Runtime
from tests.fakes.discord import FakeDiscord, served_discord
from tests.fakes.notion import FakeNotion
from tests.servers import serve_in_thread
from tests.support import GITHUB_SECRET, copy_example, in_ci
from tests.support import REDIS_URL_FOR_TESTS as REDIS_URL


@pytest.fixture
def notion() -> Iterator[tuple[FakeNotion, str]]:
    """The fake Notion API with the shared fixtures, on 127.0.0.1, for one test:
    (fake, base URL)."""
    fake = FakeNotion.with_fixtures()
    with serve_in_thread(fake.app()) as base:
        yield fake, base


@pytest.fixture(scope="module")
def module_notion() -> Iterator[tuple[FakeNotion, str]]:
    """One fake Notion for all of a module's tests, which reset what they read between
    tests (a server per test is most of their time): (fake, base URL)."""
    fake = FakeNotion.with_fixtures()
    with serve_in_thread(fake.app()) as base:
        yield fake, base


@pytest.fixture
def closing_runtimes() -> Iterator[list[Runtime]]:
    """Runtimes a test builds (it appends them), closed after it."""
    runtimes: list[Runtime] = []
    yield runtimes
    for rt in runtimes:
        rt.close()


@pytest.fixture
def discord() -> Iterator[tuple[FakeDiscord, str]]:
    """The fake Discord webhook on 127.0.0.1, for one test: (fake, webhook URL)."""
    with served_discord() as served:
        yield served


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped example config and rules, run from its directory."""
    monkeypatch.chdir(copy_example(tmp_path))
    monkeypatch.setenv("SWITCHBOARD_SECRET_GITHUB", GITHUB_SECRET)
    return tmp_path


@pytest.fixture
def redis_namespace() -> Iterator[str]:
    """A unique Dramatiq namespace on the real Redis, deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        if in_ci():
            pytest.fail(f"Redis at {REDIS_URL} is required in CI: {exc}")
        pytest.skip(f"Redis at {REDIS_URL} is not running: {exc}")
    namespace = f"sbtest-{uuid.uuid4().hex[:12]}"
    try:
        yield namespace
    finally:
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
