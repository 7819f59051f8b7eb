"""Per-destination rate limits and circuit breakers, shared by all workers.

Limits are sliding-window logs: at most `count` sends in ANY window of `per_s` seconds,
which is what providers with fixed buckets (Discord: 5 per 2 s per webhook) require; a
token bucket with bursts would let a burst plus its refill through in one window.
`acquire` either takes a slot in every window of a destination or says how long to wait,
so deliveries are delayed, never failed. In Redis mode the state lives in Redis
and is updated by one Lua script per call using Redis's own clock, so any number of
worker processes share one budget; embedded mode keeps it in memory.

The breaker opens after `threshold` consecutive retryable failures, defers deliveries
while open, lets one probe through after the cooldown (half-open), and closes on success.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import redis

from hub.errors import StoreError

log = logging.getLogger("switchboard.ratelimit")


@dataclass(frozen=True, slots=True)
class Limit:
    """`count` sends per `per_s` seconds, bursts of up to `count` allowed."""

    count: int
    per_s: float


class Limiter(Protocol):
    def acquire(self, key: str, limits: Sequence[Limit]) -> float:
        """Take a slot now (return 0.0) or return the seconds to wait; nothing is taken then."""
        ...

    def pause(self, key: str, seconds: float) -> None:
        """The provider said the destination is exhausted: nobody sends for `seconds`."""
        ...


class Breaker(Protocol):
    def check(self, key: str, policy: BreakerPolicy) -> float:
        """0.0 when a send may go ahead (closed, or the half-open probe); else wait seconds."""
        ...

    def record(self, key: str, policy: BreakerPolicy, *, success: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    threshold: int = 5
    cooldown_s: float = 30.0
    max_cooldown_s: float = 600.0


# --- in memory (embedded mode) -------------------------------------------------------


class MemoryLimiter:
    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._now = monotonic
        self._sent: dict[str, deque[float]] = {}
        self._paused: dict[str, float] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, limits: Sequence[Limit]) -> float:
        with self._lock:
            now = self._now()
            wait = max(0.0, self._paused.get(key, 0.0) - now)
            logs = []
            for index, limit in enumerate(limits):
                log = self._sent.setdefault(f"{key}#{index}", deque())
                while log and log[0] <= now - limit.per_s:
                    log.popleft()
                if len(log) >= limit.count:
                    wait = max(wait, log[len(log) - limit.count] + limit.per_s - now)
                logs.append(log)
            if wait > 0:
                return wait
            for log in logs:
                log.append(now)
            return 0.0

    def pause(self, key: str, seconds: float) -> None:
        with self._lock:
            until = self._now() + seconds
            self._paused[key] = max(self._paused.get(key, 0.0), until)


class MemoryBreaker:
    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._now = monotonic
        self._failures: dict[str, int] = {}
        self._open_until: dict[str, float] = {}
        self._probing: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, key: str, policy: BreakerPolicy) -> float:
        with self._lock:
            now = self._now()
            until = self._open_until.get(key)
            if until is None:
                return 0.0
            if now < until:
                return until - now
            if self._probing.get(key, 0.0) > now:
                return 1.0  # one probe at a time; others wait for its answer
            self._probing[key] = now + policy.cooldown_s
            return 0.0

    def record(self, key: str, policy: BreakerPolicy, *, success: bool) -> None:
        with self._lock:
            self._probing.pop(key, None)
            if success:
                self._failures.pop(key, None)
                self._open_until.pop(key, None)
                return
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            if failures >= policy.threshold:
                steps = failures - policy.threshold
                cooldown = min(policy.max_cooldown_s, policy.cooldown_s * 2**steps)
                self._open_until[key] = self._now() + cooldown


class CachedBreaker:
    """A shared breaker asked at most once a second per destination while it is closed.

    With Redis, `check` and `record` are a round trip each, for every send: 12% of a
    worker's CPU with a fast destination. While this process last saw the destination
    closed and healthy, the check is answered from that for `ttl_s`, and a success is
    recorded once per `ttl_s` (it resets the failure count other processes build up). A
    failure is always recorded, and forgets the local view, so the breaker opens as soon
    as before; another process's failures are seen within `ttl_s`.
    """

    def __init__(self, shared: Breaker, monotonic: Callable[[], float], ttl_s: float = 1.0):
        self._shared = shared
        self._now = monotonic
        self._ttl_s = ttl_s
        self._closed_until: dict[str, float] = {}
        self._success_until: dict[str, float] = {}

    def check(self, key: str, policy: BreakerPolicy) -> float:
        now = self._now()
        if self._closed_until.get(key, 0.0) > now:
            return 0.0
        wait = self._shared.check(key, policy)
        if wait <= 0:
            # Closed, or half open and this call is its one probe: trusted only after a
            # success is recorded (below), so a probe's answer comes first.
            self._closed_until.pop(key, None)
        return wait

    def record(self, key: str, policy: BreakerPolicy, *, success: bool) -> None:
        now = self._now()
        if not success:
            self._closed_until.pop(key, None)
            self._success_until.pop(key, None)
            self._shared.record(key, policy, success=False)
            return
        if self._success_until.get(key, 0.0) > now:
            return
        self._shared.record(key, policy, success=True)
        self._success_until[key] = self._closed_until[key] = now + self._ttl_s


# --- Redis (production mode) ---------------------------------------------------------

# KEYS: pause key, then one sorted set per limit. ARGV: member id, then (per_ms, count) pairs.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local paused = tonumber(redis.call('GET', KEYS[1]) or '0')
local wait = math.max(0, paused - now)
for i = 2, #KEYS do
  local per = tonumber(ARGV[(i - 2) * 2 + 2])
  local count = tonumber(ARGV[(i - 2) * 2 + 3])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - per)
  local n = redis.call('ZCARD', KEYS[i])
  if n >= count then
    local edge = redis.call('ZRANGE', KEYS[i], n - count, n - count, 'WITHSCORES')
    wait = math.max(wait, tonumber(edge[2]) + per - now)
  end
end
if wait > 0 then return tostring(wait) end
for i = 2, #KEYS do
  local per = tonumber(ARGV[(i - 2) * 2 + 2])
  redis.call('ZADD', KEYS[i], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], math.ceil(per) + 1000)
end
return '0'
"""

_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untils = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if untils > current then redis.call('SET', KEYS[1], untils, 'PX', tonumber(ARGV[1]) + 1000) end
return 0
"""

# KEYS: breaker hash. Returns ms to wait (0: go ahead).
_CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until == 0 then return 0 end
if now < open_until then return open_until - now end
local probe = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if probe > now then return 1000 end
redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[1]))
return 0
"""

# ARGV: success(0/1), threshold, cooldown_ms, max_cooldown_ms
_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HDEL', KEYS[1], 'probe_until')
if ARGV[1] == '1' then redis.call('DEL', KEYS[1]) return 0 end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local threshold = tonumber(ARGV[2])
if failures >= threshold then
  local cooldown = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ (failures - threshold))
  redis.call('HSET', KEYS[1], 'open_until', now + cooldown)
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) * 4)
return failures
"""


class RedisLimiter:
    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._client = client
        self._ns = namespace
        self._acquire = client.register_script(_ACQUIRE)
        self._pause = client.register_script(_PAUSE)

    def acquire(self, key: str, limits: Sequence[Limit]) -> float:
        keys = [f"{self._ns}:rl:{key}:pause"] + [
            f"{self._ns}:rl:{key}:{index}" for index in range(len(limits))
        ]
        args: list[str | float] = [uuid.uuid4().hex]
        for limit in limits:
            args += [limit.per_s * 1000, limit.count]
        try:
            wait_ms = self._acquire(keys=keys, args=args)
        except redis.RedisError as exc:
            raise StoreError(f"rate limiter unavailable: {exc}") from exc
        return float(wait_ms) / 1000

    def pause(self, key: str, seconds: float) -> None:
        try:
            self._pause(keys=[f"{self._ns}:rl:{key}:pause"], args=[int(seconds * 1000)])
        except redis.RedisError as exc:
            raise StoreError(f"rate limiter unavailable: {exc}") from exc


class RedisBreaker:
    def __init__(self, client: redis.Redis, namespace: str) -> None:
        self._ns = namespace
        self._check = client.register_script(_CHECK)
        self._record = client.register_script(_RECORD)

    def check(self, key: str, policy: BreakerPolicy) -> float:
        try:
            wait_ms = self._check(
                keys=[f"{self._ns}:cb:{key}"], args=[int(policy.cooldown_s * 1000)]
            )
        except redis.RedisError as exc:
            raise StoreError(f"circuit breaker unavailable: {exc}") from exc
        return float(wait_ms) / 1000

    def record(self, key: str, policy: BreakerPolicy, *, success: bool) -> None:
        p = policy
        try:
            self._record(
                keys=[f"{self._ns}:cb:{key}"],
                args=[
                    1 if success else 0,
                    p.threshold,
                    int(p.cooldown_s * 1000),
                    int(p.max_cooldown_s * 1000),
                ],
            )
        except redis.RedisError as exc:
            raise StoreError(f"circuit breaker unavailable: {exc}") from exc


def make_limits(
    broker_url: str,
    namespace: str,
    monotonic: Callable[[], float],
    *,
    limits_url: str | None = None,
) -> tuple[Limiter, Breaker]:
    """Redis state shared by every process: at `limits_url`, else the Redis broker's own;
    in-memory state for the embedded broker.

    RabbitMQ has nowhere to keep shared counters: without `limits_url` each process keeps
    its own (docs/operations.md, "Broker"), and the budget is per process, not shared.
    """
    if limits_url is None and broker_url == "embedded":
        return MemoryLimiter(monotonic), MemoryBreaker(monotonic)
    if limits_url is None and broker_url.startswith(("amqp://", "amqps://")):
        log.warning(
            "RabbitMQ broker: rate limits and circuit breakers are per process, "
            "not shared by all workers (set broker.limits_url to a Redis to share them)"
        )
        return MemoryLimiter(monotonic), MemoryBreaker(monotonic)
    client = redis.Redis.from_url(limits_url or broker_url)
    return RedisLimiter(client, namespace), RedisBreaker(client, namespace)
