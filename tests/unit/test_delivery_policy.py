"""The delivery policy as a table: (result, attempt, age) → delivered, retry at T, or dead."""

from __future__ import annotations

import random

import pytest

from connectors.base import SendResult, fail, ok, retry
from hub.pipeline.deliver import Decision, RetryPolicy, decide

POLICY = RetryPolicy(max_attempts=5, base_delay_s=1.0, max_delay_s=60.0, max_age_s=3600.0)


@pytest.mark.parametrize(
    ("result", "attempt", "age_s", "expected"),
    [
        (ok("m1"), 1, 0, Decision("delivered")),
        (fail("bad request"), 1, 0, Decision("dead", reason="bad request")),
        (retry(0.524, "429"), 1, 0, Decision("retry", delay_s=0.524, reason="429")),
        (retry(30.0, "429"), 4, 0, Decision("retry", delay_s=30.0, reason="429")),
        (retry(None, "503"), 5, 0, Decision("dead", reason="gave up after 5 attempts: 503")),
        (retry(120.0, "429"), 1, 3500, Decision("dead", reason="too old to retry (3500s): 429")),
    ],
)
def test_decision_table(result: SendResult, attempt: int, age_s: float, expected: Decision) -> None:
    assert (
        decide(result, attempt=attempt, age_s=age_s, policy=POLICY, rng=random.Random(1))
        == expected
    )


def test_retry_after_is_honoured_exactly_with_no_jitter() -> None:
    delays = {
        decide(
            retry(2.5, "429"), attempt=2, age_s=0, policy=POLICY, rng=random.Random(seed)
        ).delay_s
        for seed in range(20)
    }
    assert delays == {2.5}


def test_backoff_without_retry_after_is_full_jitter_capped_exponential() -> None:
    rng = random.Random(7)
    for attempt in range(1, 5):
        ceiling = min(POLICY.max_delay_s, POLICY.base_delay_s * 2 ** (attempt - 1))
        delays = [
            decide(retry(None, "503"), attempt=attempt, age_s=0, policy=POLICY, rng=rng).delay_s
            for _ in range(200)
        ]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # the spread really uses the whole window
