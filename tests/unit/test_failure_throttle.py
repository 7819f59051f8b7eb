"""The login/token throttle: a window of failures per address, then a wait that ends."""

from __future__ import annotations

from hub.auth.throttle import FailureThrottle
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


def test_changing_address_does_not_buy_more_guesses_than_the_global_cap() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(clock.monotonic, limit=3, window_s=60, global_limit=5)
    for n in range(5):  # one guess each from five addresses
        assert throttle.blocked_for(f"10.0.0.{n}") == 0
        throttle.failed(f"10.0.0.{n}")
    assert throttle.blocked_for("10.0.0.99") == 60  # a sixth address waits for the window
    clock.advance(60)
    assert throttle.blocked_for("10.0.0.99") == 0


def test_a_flood_never_locks_the_admin_out_of_an_address_they_signed_in_from() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(clock.monotonic, limit=3, window_s=60, global_limit=5)
    throttle.succeeded("192.0.2.7")  # the admin's usual address
    for n in range(20):
        throttle.failed(f"10.0.1.{n}")
    for _ in range(3):
        throttle.failed("10.0.0.1")
    assert throttle.blocked_for("10.0.0.1") > 0  # the attacker's address is locked
    assert throttle.blocked_for("192.0.2.7") == 0  # the admin's is not
    throttle.failed("192.0.2.7")  # a typo by the admin costs only their own budget
    assert throttle.blocked_for("192.0.2.7") == 0
