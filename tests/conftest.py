"""Fixtures shared by all suites: real Redis (skip locally when down, fail in CI)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from tests.support import REDIS_URL_FOR_TESTS as REDIS_URL
from tests.support import in_ci


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
