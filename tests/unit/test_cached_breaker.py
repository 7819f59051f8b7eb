"""CachedBreaker: the shared breaker is asked once a second per destination while it is
closed and healthy; failures always reach it, so it opens as soon as before."""

from __future__ import annotations

from hub.pipeline.ratelimit import BreakerPolicy, CachedBreaker, MemoryBreaker

POLICY = BreakerPolicy(threshold=3, cooldown_s=10.0)


class CountingBreaker(MemoryBreaker):
    def __init__(self, now: list[float]) -> None:
        super().__init__(lambda: now[0])
        self.checks = 0
        self.records: list[bool] = []

    def check(self, key: str, policy: BreakerPolicy) -> float:
        self.checks += 1
        return super().check(key, policy)

    def record(self, key: str, policy: BreakerPolicy, *, success: bool) -> None:
        self.records.append(success)
        super().record(key, policy, success=success)


def _pair() -> tuple[list[float], CountingBreaker, CachedBreaker]:
    now = [100.0]
    shared = CountingBreaker(now)
    return now, shared, CachedBreaker(shared, lambda: now[0], ttl_s=1.0)


def test_a_healthy_destination_costs_one_check_and_one_record_a_second() -> None:
    now, shared, cached = _pair()
    for _ in range(50):  # given 50 sends within a second, all successful
        assert cached.check("discord:a", POLICY) == 0.0
        cached.record("discord:a", POLICY, success=True)
    assert (shared.checks, shared.records) == (1, [True])
    # when the second has passed, the shared state is asked (and told) again
    now[0] += 1.01
    assert cached.check("discord:a", POLICY) == 0.0
    cached.record("discord:a", POLICY, success=True)
    assert (shared.checks, shared.records) == (2, [True, True])


def test_failures_always_reach_the_shared_breaker_and_open_it_at_the_threshold() -> None:
    _, shared, cached = _pair()
    cached.check("discord:a", POLICY)
    cached.record("discord:a", POLICY, success=True)
    for _ in range(POLICY.threshold):
        cached.record("discord:a", POLICY, success=False)
    assert shared.records == [True, False, False, False]
    # the local view is forgotten: the next check asks, and the breaker is open
    assert cached.check("discord:a", POLICY) > 0
    assert shared.checks == 2


def test_another_processs_failures_are_seen_within_the_ttl() -> None:
    now, shared, cached = _pair()
    cached.check("discord:a", POLICY)
    cached.record("discord:a", POLICY, success=True)
    for _ in range(POLICY.threshold):  # another worker process trips the shared breaker
        shared.record("discord:a", POLICY, success=False)
    assert cached.check("discord:a", POLICY) == 0.0  # still within this process's second
    now[0] += 1.01
    assert cached.check("discord:a", POLICY) > 0  # then it is seen


def test_each_destination_has_its_own_view() -> None:
    _, shared, cached = _pair()
    cached.check("discord:a", POLICY)
    cached.record("discord:a", POLICY, success=True)
    cached.check("slack:b", POLICY)
    assert shared.checks == 2
