"""The login/token throttle: a window of failures per address, then a wait that ends."""

from __future__ import annotations

from hub.admin.throttle import FailureThrottle
from hub.clock import FakeClock


def test_an_address_waits_until_its_oldest_failure_leaves_the_window() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(clock.monotonic, limit=3, window_s=60)
    for _ in range(3):
        assert throttle.blocked_for("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
        clock.advance(10)
    assert throttle.blocked_for("10.0.0.1") == 30  # the first failure leaves at t=60
    assert throttle.blocked_for("10.0.0.2") == 0  # other addresses are not affected
    clock.advance(30)
    assert throttle.blocked_for("10.0.0.1") == 0


def test_a_success_forgets_the_failures() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(clock.monotonic, limit=2, window_s=60)
    throttle.failed("a")
    throttle.succeeded("a")
    throttle.failed("a")
    assert throttle.blocked_for("a") == 0
