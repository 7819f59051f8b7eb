"""Run the hub as real processes (ingress + workers on Redis) and push GitHub events at it."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support import (
    GITHUB_SECRET,
    fixture_path,
    free_port,
    github_headers,
    wait_healthy,
)

#: One action per event: "<entity>:<seq>" lets a test check order per entity.
CHAOS_RULES = """
rules:
  - id: issue-event
    on: github.issues.*
    actions:
      - discord:
          channel: tasks
          content: "{{ event.data.fields.number }}:{{ event.data.entity.title }}"
"""


def issue_payload(entity: int, seq: int) -> bytes:
    """The real `issues.opened` payload, moved to issue `entity` with title `seq`."""
    payload: dict[str, Any] = json.loads(
        fixture_path("github", "issues", "opened.json").read_text()
    )
    payload = copy.deepcopy(payload)
    payload["issue"]["number"] = entity
    payload["issue"]["id"] = 900_000 + entity
    payload["issue"]["title"] = str(seq)
    return json.dumps(payload).encode()


@dataclass
class HubProcesses:
    """`serve --no-worker` plus named `worker` processes, each restartable and killable."""

    config: Path
    logs: Path
    webhook_url: str
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _sent: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SWITCHBOARD_SECRET_GITHUB": GITHUB_SECRET,
            "TEST_DISCORD_WEBHOOK_URL": self.webhook_url,
            **self.extra_env,
        }

    def _spawn(self, name: str, args: list[str]) -> None:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "hub", "-c", str(self.config), *args],
                env=self._env(),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def start_ingress(self) -> None:
        self._spawn("serve", ["serve", "--no-worker", "--port", str(self.port)])
        wait_healthy(self.base, "the ingress process")

    def start_worker(self, name: str, threads: int = 4) -> None:
        self._spawn(name, ["worker", "--threads", str(threads)])

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash or an OOM kill."""
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def post_issue(self, client: httpx.Client, entity: int, seq: int) -> None:
        body = issue_payload(entity, seq)
        self._sent += 1
        headers = github_headers(body, event="issues", delivery=f"chaos-{entity}-{seq}")
        response = client.post("/hooks/github", content=body, headers=headers)
        # 200 duplicate: an earlier try was stored but its answer was lost (the ingress was
        # killed after the commit); for the sender, as for GitHub, that is accepted too.
        duplicate = response.status_code == 200 and response.json().get("duplicate") is True
        assert response.status_code == 202 or duplicate, response.text

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()

    def log_text(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in self.logs.glob("*.log")
        )


def order_kept(delivered: list[str]) -> dict[str, list[int]]:
    """Entities whose messages arrived out of sequence, with what arrived (empty: all kept)."""
    seen: dict[str, list[int]] = {}
    for content in delivered:
        entity, _, seq = content.partition(":")
        seen.setdefault(entity, []).append(int(seq))
    # A redelivered duplicate may repeat a number; the order of first arrivals must rise.
    broken = {}
    for entity, seqs in seen.items():
        firsts = list(dict.fromkeys(seqs))
        if firsts != sorted(firsts):
            broken[entity] = seqs
    return broken
