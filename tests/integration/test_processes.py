"""Production shape with real processes: `serve --no-worker` + two `worker`s on Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.fakes.discord import FakeDiscord
from tests.support import (
    GITHUB_SECRET,
    REDIS_URL_FOR_TESTS,
    fixture_path,
    free_port,
    github_headers,
    wait_healthy,
    wait_until,
    write_config,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "hub", *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def test_ingress_process_and_two_worker_processes_deliver_every_event_once(
    tmp_path: Path, discord: tuple[FakeDiscord, str], redis_namespace: str
) -> None:
    fake, url = discord
    config = write_config(tmp_path, broker_url=REDIS_URL_FOR_TESTS, namespace=redis_namespace)
    port = free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_SECRET_GITHUB": GITHUB_SECRET,
        "TEST_DISCORD_WEBHOOK_URL": url,
    }
    procs = [
        _spawn(
            ["-c", str(config), "serve", "--no-worker", "--port", str(port)],
            env,
            tmp_path / "serve.log",
        ),
        _spawn(["-c", str(config), "worker", "--threads", "2"], env, tmp_path / "worker1.log"),
        _spawn(["-c", str(config), "worker", "--threads", "2"], env, tmp_path / "worker2.log"),
    ]
    body = fixture_path("github", "issues", "opened.json").read_bytes()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, "the ingress process")
        ids = []
        with httpx.Client(base_url=base, timeout=5) as client:
            for n in range(30):
                response = client.post(
                    "/hooks/github",
                    content=body,
                    headers=github_headers(body, event="issues", delivery=f"proc-{n}"),
                )
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
        wait_until(lambda: len(fake.ok()) >= 30, 30, "30 messages reached the fake Discord")
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        logs = {p.name: p.read_text(errors="replace") for p in tmp_path.glob("*.log")}
    contents = sorted(r.body["content"] for r in fake.ok())
    assert contents == sorted(f"opened {i}" for i in ids), logs
    assert "Traceback" not in "".join(logs.values()), logs
