"""Slow down guessing: after too many failed logins or tokens from one address, refuse
that address for a while (429 + Retry-After) without checking what it sends; and cap the
failures of all addresses together, so changing address does not buy more guesses.

Two limits, chosen so that an attacker can never lock the admin out:

- Per address: `limit` failures in `window_s`, then that address alone waits.
- Global: `global_limit` failures in `window_s` from all addresses together, then
  addresses this process has not seen sign in successfully wait until the window has room
  again. Addresses that signed in (`succeeded`) within `known_for_s` are exempt from the
  global cap; they only ever meet their own per-address limit. So an attacker spraying
  from many addresses (or through a proxy it can make name any address) gets at most
  `global_limit` guesses per window in total, while the admin keeps signing in from the
  addresses they used before. The cost: during such a flood, a first sign-in from a new
  address waits too (at most `window_s`), which we prefer to an unlimited guessing rate.

Per process and in memory: with several ingress processes an attacker gets the limits
once per process, still far too few to guess a token or a good password.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable

#: Failed attempts allowed per client address in WINDOW_S seconds.
LIMIT = 10
WINDOW_S = 300.0
#: Failed attempts allowed from all addresses together in WINDOW_S seconds.
GLOBAL_LIMIT = 100
#: How long an address that signed in stays exempt from the global cap.
KNOWN_FOR_S = 30 * 24 * 3600.0
#: Addresses remembered at most (oldest forgotten first): bounded memory under a scan.
MAX_ADDRESSES = 10_000


class FailureThrottle:
    def __init__(
        self,
        monotonic: Callable[[], float],
        *,
        limit: int = LIMIT,
        window_s: float = WINDOW_S,
        global_limit: int = GLOBAL_LIMIT,
        known_for_s: float = KNOWN_FOR_S,
    ) -> None:
        self._now = monotonic
        self._limit = limit
        self._window_s = window_s
        self._global_limit = global_limit
        self._known_for_s = known_for_s
        self._failures: dict[str, deque[float]] = {}
        self._all_failures: deque[float] = deque()
        self._known: OrderedDict[str, float] = OrderedDict()  # address -> last success
        self._lock = threading.Lock()

    def blocked_for(self, address: str) -> int:
        """Whole seconds this address must wait before trying again (0: it may try)."""
        with self._lock:
            now = self._now()
            failures = self._prune(address)
            if len(failures) >= self._limit:
                return max(1, math.ceil(failures[0] + self._window_s - now))
            if self._is_known(address, now):
                return 0
            everyone = self._prune_all()
            if len(everyone) >= self._global_limit:
                return max(1, math.ceil(everyone[0] + self._window_s - now))
            return 0

    def failed(self, address: str) -> None:
        with self._lock:
            now = self._now()
            self._prune(address).append(now)
            self._prune_all().append(now)
            if len(self._failures) > MAX_ADDRESSES:
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)
            self._known.pop(address, None)
            self._known[address] = self._now()
            if len(self._known) > MAX_ADDRESSES:
                self._known.popitem(last=False)

    def _is_known(self, address: str, now: float) -> bool:
        since = self._known.get(address)
        return since is not None and now - since < self._known_for_s

    def _prune(self, address: str) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and failures[0] <= self._now() - self._window_s:
            failures.popleft()
        return failures

    def _prune_all(self) -> deque[float]:
        while self._all_failures and self._all_failures[0] <= self._now() - self._window_s:
            self._all_failures.popleft()
        return self._all_failures
