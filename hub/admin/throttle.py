"""Slow down guessing: after too many failed logins or tokens from one address, refuse
that address for a while (429 + Retry-After) without checking what it sends.

Per process and in memory: with several ingress processes an attacker gets `limit`
tries per process per window, still far too few to guess a token or a good password.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable

#: Failed attempts allowed per client address in WINDOW_S seconds.
LIMIT = 10
WINDOW_S = 300.0
#: Addresses remembered at most (oldest forgotten first): bounded memory under a scan.
MAX_ADDRESSES = 10_000


class FailureThrottle:
    def __init__(
        self,
        monotonic: Callable[[], float],
        *,
        limit: int = LIMIT,
        window_s: float = WINDOW_S,
    ) -> None:
        self._now = monotonic
        self._limit = limit
        self._window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked_for(self, address: str) -> int:
        """Whole seconds this address must wait before trying again (0: it may try)."""
        with self._lock:
            failures = self._prune(address)
            if len(failures) < self._limit:
                return 0
            return max(1, math.ceil(failures[0] + self._window_s - self._now()))

    def failed(self, address: str) -> None:
        with self._lock:
            self._prune(address).append(self._now())
            if len(self._failures) > MAX_ADDRESSES:
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)

    def _prune(self, address: str) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and failures[0] <= self._now() - self._window_s:
            failures.popleft()
        return failures
