"""Shared rate limits and circuit breakers: the in-memory pair (clock-driven) and the Redis
pair (the real Redis, shared by every worker process) must behave the same way."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from hub.clock import FakeClock
from hub.pipeline.ratelimit import (
    Breaker,
    BreakerPolicy,
    Limit,
    Limiter,
    MemoryBreaker,
    MemoryLimiter,
    RedisBreaker,
    RedisLimiter,
)
from tests.support import REDIS_URL_FOR_TESTS

FIVE_PER_2S = [Limit(5, 2.0)]


# --- in memory: time is a FakeClock, so every wait is exact -------------------------------


def test_a_full_window_says_how_long_until_the_oldest_send_leaves_it() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock.monotonic)
    for _ in range(5):
        assert limiter.acquire("discord:tasks", FIVE_PER_2S) == 0.0
        clock.advance(0.1)
    assert limiter.acquire("discord:tasks", FIVE_PER_2S) == pytest.approx(1.5)
    clock.advance(1.5)
    assert limiter.acquire("discord:tasks", FIVE_PER_2S) == 0.0


def test_a_refused_request_takes_no_slot() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock.monotonic)
    for _ in range(5):
        limiter.acquire("k", FIVE_PER_2S)
    for _ in range(50):  # many refused tries while the window is full...
        assert limiter.acquire("k", FIVE_PER_2S) > 0
    clock.advance(2.0)  # ...do not push the next free slot later
    assert limiter.acquire("k", FIVE_PER_2S) == 0.0


def test_every_limit_must_allow_and_the_longest_wait_wins() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock.monotonic)
    limits = [Limit(5, 2.0), Limit(6, 60.0)]
    for _ in range(5):
        assert limiter.acquire("k", limits) == 0.0
    clock.advance(2.0)
    assert limiter.acquire("k", limits) == 0.0  # the 6th of the minute
    clock.advance(2.0)
    assert limiter.acquire("k", limits) == pytest.approx(56.0)  # the minute is spent


def test_destinations_have_separate_budgets() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock.monotonic)
    for _ in range(5):
        limiter.acquire("discord:a", FIVE_PER_2S)
    assert limiter.acquire("discord:a", FIVE_PER_2S) > 0
    assert limiter.acquire("discord:b", FIVE_PER_2S) == 0.0


def test_a_pause_from_the_provider_holds_everyone_off() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock.monotonic)
    limiter.pause("k", 3.0)
    limiter.pause("k", 1.0)  # a shorter pause never shortens a longer one
    assert limiter.acquire("k", []) == pytest.approx(3.0)
    clock.advance(3.0)
    assert limiter.acquire("k", []) == 0.0


def test_the_breaker_opens_probes_once_and_backs_off_when_the_probe_fails() -> None:
    clock = FakeClock()
    breaker = MemoryBreaker(clock.monotonic)
    policy = BreakerPolicy(threshold=3, cooldown_s=10.0)
    for _ in range(2):
        breaker.record("k", policy, success=False)
    assert breaker.check("k", policy) == 0.0  # two failures: still closed
    breaker.record("k", policy, success=False)
    assert breaker.check("k", policy) == pytest.approx(10.0)  # open
    clock.advance(10.0)
    assert breaker.check("k", policy) == 0.0  # the half-open probe goes through...
    assert breaker.check("k", policy) > 0  # ...alone
    breaker.record("k", policy, success=False)  # the probe failed: twice the cooldown
    assert breaker.check("k", policy) == pytest.approx(20.0)
    clock.advance(20.0)
    assert breaker.check("k", policy) == 0.0
    breaker.record("k", policy, success=True)  # the probe worked: closed again
    assert breaker.check("k", policy) == 0.0
    assert breaker.check("k", policy) == 0.0


# --- the same contract on the real Redis ----------------------------------------------


@pytest.fixture
def redis_pair(redis_namespace: str) -> Iterator[tuple[Limiter, Breaker]]:
    client = redis.Redis.from_url(REDIS_URL_FOR_TESTS)
    yield RedisLimiter(client, redis_namespace), RedisBreaker(client, redis_namespace)
    client.close()


@pytest.mark.redis
def test_redis_limiter_is_one_budget_for_many_concurrent_workers(
    redis_pair: tuple[Limiter, Breaker],
) -> None:
    limiter, _ = redis_pair
    granted: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            if limiter.acquire("discord:tasks", [Limit(5, 30.0)]) == 0.0:
                with lock:
                    granted.append(1.0)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 5  # 80 tries from 8 threads, exactly 5 slots in the window
    wait = limiter.acquire("discord:tasks", [Limit(5, 30.0)])
    assert 0 < wait <= 30.0


@pytest.mark.redis
def test_redis_limiter_frees_the_slot_when_the_window_passes(
    redis_pair: tuple[Limiter, Breaker],
) -> None:
    limiter, _ = redis_pair
    window = [Limit(2, 0.3)]
    assert limiter.acquire("k", window) == 0.0
    assert limiter.acquire("k", window) == 0.0
    wait = limiter.acquire("k", window)
    assert 0 < wait <= 0.3
    threading.Event().wait(wait + 0.01)
    assert limiter.acquire("k", window) == 0.0


@pytest.mark.redis
def test_redis_pause_and_breaker_follow_the_same_contract(
    redis_pair: tuple[Limiter, Breaker],
) -> None:
    limiter, breaker = redis_pair
    limiter.pause("k", 5.0)
    assert 4.0 < limiter.acquire("k", [Limit(100, 1.0)]) <= 5.0
    policy = BreakerPolicy(threshold=2, cooldown_s=30.0)
    breaker.record("b", policy, success=False)
    assert breaker.check("b", policy) == 0.0
    breaker.record("b", policy, success=False)
    assert 29.0 < breaker.check("b", policy) <= 30.0
    breaker.record("b", policy, success=True)
    assert breaker.check("b", policy) == 0.0
