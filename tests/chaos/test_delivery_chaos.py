"""Chaos: real processes on Redis against a misbehaving destination, each run bounded.

What users moved to Switchboard for: nothing accepted is lost and nothing is sent
faster than the destination allows, whatever is killed or restarted.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
import redis

from hub.config import DeliveryPolicy
from tests.chaos.harness import CHAOS_RULES, HubProcesses, order_kept
from tests.fakes.destination import FlakyDestination
from tests.servers import serve_in_thread
from tests.support import REDIS_URL_FOR_TESTS, free_port, wait_until, write_config

pytestmark = [pytest.mark.redis, pytest.mark.slow, pytest.mark.chaos]

WEBHOOK_PATH = "/api/webhooks/1/tok-not-real"


def _hub(
    tmp_path: Path,
    destination_base: str,
    *,
    broker_url: str,
    namespace: str,
    tasks_policy: str = "",
    lease_seconds: float = 60,
    http_timeout_seconds: float = 10,
) -> HubProcesses:
    config = write_config(
        tmp_path,
        broker_url=broker_url,
        namespace=namespace,
        rules=CHAOS_RULES,
        lease_seconds=lease_seconds,
        http_timeout_seconds=http_timeout_seconds,
        tasks_policy=tasks_policy,
    )
    return HubProcesses(config=config, logs=tmp_path, webhook_url=destination_base + WEBHOOK_PATH)


def _all_of(entities: int, per_entity: int) -> list[str]:
    return [f"{e}:{s}" for s in range(per_entity) for e in range(1, entities + 1)]


def test_a_burst_is_paced_to_the_destination_limit_without_a_single_429(
    tmp_path: Path, redis_namespace: str
) -> None:
    # Discord's shape (5 per 2 s) at a faster rate, so 200 messages take ~10 s, not 80.
    fake = FlakyDestination(limit=(20, 1.0))
    expected = _all_of(entities=10, per_entity=20)
    with serve_in_thread(fake.app()) as base:
        hub = _hub(
            tmp_path,
            base,
            broker_url=REDIS_URL_FOR_TESTS,
            namespace=redis_namespace,
            tasks_policy='    rate_limit: ["20/1s"]',
        )
        try:
            hub.start_ingress()
            hub.start_worker("w1")
            hub.start_worker("w2")
            with httpx.Client(base_url=hub.base, timeout=5) as client:
                for content in expected:
                    entity, _, seq = content.partition(":")
                    hub.post_issue(client, int(entity), int(seq))
            wait_until(lambda: len(fake.delivered()) >= len(expected), 60, "all 200 delivered")
        finally:
            hub.stop()
    delivered = fake.delivered()
    assert fake.count(429) == 0, _around_429(fake)
    assert sorted(delivered) == sorted(expected)
    assert order_kept(delivered) == {}
    # Paced, not just slow: 200 at 20/s cannot take less than ~9 s from the first send.
    arrivals = [a.at for a in fake.arrivals]
    assert max(arrivals) - min(arrivals) >= 9.0


def _around_429(fake: FlakyDestination) -> str:
    """The arrivals in the window before the first 429, relative to it, to see the jitter."""
    arrivals = fake.arrivals
    first = next(i for i, a in enumerate(arrivals) if a.status == 429)
    at = arrivals[first].at
    return " ".join(
        f"{a.at - at:+.3f}/{a.status}" for a in arrivals[max(0, first - 22) : first + 1]
    )


def test_retry_after_is_kept_no_earlier_and_at_most_ten_percent_later(
    tmp_path: Path, redis_namespace: str
) -> None:
    fake = FlakyDestination()
    with serve_in_thread(fake.app()) as base:
        hub = _hub(tmp_path, base, broker_url=REDIS_URL_FOR_TESTS, namespace=redis_namespace)
        try:
            hub.start_ingress()
            hub.start_worker("w1")
            with httpx.Client(base_url=hub.base, timeout=5) as client:
                for seq, wait_s in enumerate([1.5, 0.6]):
                    fake.script.append(("429", wait_s))
                    hub.post_issue(client, 7, seq)
                    wait_until(lambda n=seq: len(fake.delivered()) > n, 20, f"retry {seq} sent")
        finally:
            hub.stop()
    arrivals = fake.arrivals
    assert [a.status for a in arrivals] == [429, 200, 429, 200], hub.log_text()
    for (limited, retried), wait_s in zip(
        [(arrivals[0], arrivals[1]), (arrivals[2], arrivals[3])], [1.5, 0.6], strict=True
    ):
        waited = retried.at - limited.at
        assert wait_s <= waited <= wait_s * 1.10, f"asked {wait_s}s, waited {waited:.3f}s"


def test_errors_hangs_and_a_dead_destination_end_with_everything_delivered_once(
    tmp_path: Path, redis_namespace: str
) -> None:
    fake = FlakyDestination(script=["500", "500", "hang", "500"], hang_s=5.0)
    port = free_port()
    expected = _all_of(entities=4, per_entity=5)
    hub = _hub(
        tmp_path,
        f"http://127.0.0.1:{port}",
        broker_url=REDIS_URL_FOR_TESTS,
        namespace=redis_namespace,
        http_timeout_seconds=1,
        tasks_policy="    breaker: {threshold: 3, cooldown: 1s}\n    retry: {max_attempts: 30}",
    )
    try:
        with serve_in_thread(fake.app(), port=port):
            hub.start_ingress()
            hub.start_worker("w1")
            with httpx.Client(base_url=hub.base, timeout=5) as client:
                for content in expected[:10]:
                    entity, _, seq = content.partition(":")
                    hub.post_issue(client, int(entity), int(seq))
                wait_until(lambda: len(fake.delivered()) >= 10, 40, "first half delivered")
        # The destination is down: connections are refused while events keep coming.
        with httpx.Client(base_url=hub.base, timeout=5) as client:
            for content in expected[10:]:
                entity, _, seq = content.partition(":")
                hub.post_issue(client, int(entity), int(seq))
        threading.Event().wait(2.0)
        with serve_in_thread(fake.app(), port=port):
            wait_until(lambda: len(fake.delivered()) >= 20, 40, "second half delivered")
    finally:
        hub.stop()
    delivered = fake.delivered()
    assert sorted(delivered) == sorted(expected), hub.log_text()
    assert order_kept(delivered) == {}
    assert fake.count(500) == 3


def test_kill_9_of_ingress_and_workers_loses_no_accepted_event(
    tmp_path: Path, redis_namespace: str
) -> None:
    fake = FlakyDestination(delay_s=0.15)  # sends are in flight when the kills land
    accepted: list[str] = []
    stop_posting = threading.Event()
    with serve_in_thread(fake.app()) as base:
        hub = _hub(
            tmp_path,
            base,
            broker_url=REDIS_URL_FOR_TESTS,
            namespace=redis_namespace,
            lease_seconds=3,
            http_timeout_seconds=2,
            tasks_policy='    rate_limit: ["1000/1s"]',  # not Discord's 30/min: a fast fake
        )

        def post_forever() -> None:
            seq = 0
            with httpx.Client(base_url=hub.base, timeout=2) as client:
                while not stop_posting.is_set() and seq < 400:
                    entity = seq % 8 + 1
                    try:
                        hub.post_issue(client, entity, seq)
                    except (httpx.TransportError, AssertionError):
                        stop_posting.wait(0.05)  # ingress is down: the sender retries
                        continue
                    accepted.append(f"{entity}:{seq}")
                    seq += 1

        poster = threading.Thread(target=post_forever)
        kills = worker_kills = 0
        try:
            hub.start_ingress()
            hub.start_worker("w1", threads=2)
            hub.start_worker("w2", threads=2)
            poster.start()
            for victim in ["w1", "serve", "w2", "w1"]:
                stop_posting.wait(1.0)
                hub.kill(victim)
                kills += 1
                if victim == "serve":
                    hub.start_ingress()
                else:
                    worker_kills += 1
                    hub.start_worker(victim, threads=2)
            stop_posting.wait(1.0)
            stop_posting.set()
            poster.join(timeout=10)
            wait_until(
                lambda: set(accepted) <= set(fake.delivered()), 60, "every accepted event sent"
            )
        finally:
            stop_posting.set()
            hub.stop()
    delivered = fake.delivered()
    duplicates = sum(n - 1 for n in Counter(delivered).values())
    print(f"accepted={len(accepted)} delivered={len(delivered)} kills={kills} dup={duplicates}")
    assert len(accepted) >= 50, hub.log_text()
    assert set(delivered) == set(accepted)  # nothing lost, nothing invented
    # Discord webhooks have no idempotency key: a send cut off by SIGKILL after Discord
    # took it is sent again: at most what the killed workers had in flight, which is the
    # destination's concurrency per worker (the fake holds each send 0.15 s, so a kill
    # nearly always lands on a full set of in-flight sends).
    in_flight_per_worker = DeliveryPolicy().concurrency
    assert duplicates <= worker_kills * in_flight_per_worker, Counter(delivered).most_common(5)


def test_redis_restarted_mid_run_loses_nothing(tmp_path: Path) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    fake = FlakyDestination()
    expected = _all_of(entities=5, per_entity=12)
    redis_proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_until(lambda: _redis_up(port), 10, "the private redis-server is up")
        with serve_in_thread(fake.app()) as base:
            hub = _hub(
                tmp_path,
                base,
                broker_url=f"redis://127.0.0.1:{port}/0",
                namespace="chaos",
                lease_seconds=2,
                tasks_policy='    rate_limit: ["1000/1s"]',  # not Discord's 30/min: a fast fake
            )
            try:
                hub.start_ingress()
                hub.start_worker("w1")
                with httpx.Client(base_url=hub.base, timeout=5) as client:
                    for n, content in enumerate(expected):
                        if n == 20:  # Redis dies: nothing it held (queues, limits) survives
                            redis_proc.kill()
                            redis_proc.wait(timeout=5)
                        if n == 40:
                            redis_proc = subprocess.Popen(
                                args, stdout=subprocess.DEVNULL, cwd=tmp_path
                            )
                            wait_until(lambda: _redis_up(port), 10, "redis-server is back")
                        entity, _, seq = content.partition(":")
                        hub.post_issue(client, int(entity), int(seq))
                wait_until(lambda: set(expected) <= set(fake.delivered()), 60, "all 60 delivered")
            finally:
                hub.stop()
    finally:
        redis_proc.kill()
        redis_proc.wait(timeout=5)
    assert sorted(fake.delivered()) == sorted(expected), hub.log_text()


def _redis_up(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_timeout=0.5).ping())
    except redis.RedisError:
        return False
