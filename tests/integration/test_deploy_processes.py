"""deploy/ run for real: each shape's processes deliver a webhook and fire a `schedule:` rule.

tests/unit/test_deploy_files.py only reads the files. Here the hub processes of
docker-compose.yml, of the Kubernetes Deployments kustomization.yaml lists, and of the
systemd units are started as they are written there (their commands, their environment,
their working directory), on this machine's PostgreSQL and Redis. There is no Docker:
the image's entrypoint (`switchboard` on the image's PATH) is this venv's `switchboard`,
paths the image or unit use (/etc/switchboard, /var/lib/switchboard, the venv) are mapped
under tmp_path, and the two addresses that name the deployment's own services
(SWITCHBOARD_DATABASE_URL, SWITCHBOARD_REDIS_URL) point at a throwaway database and, with
a unique broker namespace, at the test Redis. Everything else comes from the files.

A shape passes when a signed GitHub webhook posted to its ingress reaches a `log`
destination, and an every-minute `schedule:` rule's tick fires and is delivered once,
however many scheduler replicas the file asks for. The store is seeded as if a scheduler
had seen the schedule 90 s ago (`schedules.mark_seen`), so the newest minute mark is a
missed tick that fires at the scheduler's first check: no waiting for the next minute.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub import cli
from hub.clock import SystemClock
from hub.events import format_time
from hub.rules.schedule import parse_schedule
from hub.store import open_store, schedules
from tests.postgres import postgres_database  # noqa: F401  (the postgres_url fixture)
from tests.support import (
    REDIS_URL_FOR_TESTS,
    fixture_path,
    free_port,
    github_headers,
    wait_until,
)
from tests.unit.test_deploy_files import (
    K8S,
    SYSTEMD,
    _compose,
    _dockerfile,
    _documents,
    _env_example_set,
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

#: The venv running these tests: its `switchboard` stands in for the image's and the unit's.
VENV_BIN = Path(sys.executable).parent
#: Where the deployment's own services are; the only values the test replaces.
SERVICE_URLS = ("SWITCHBOARD_DATABASE_URL", "SWITCHBOARD_REDIS_URL")
TICK_RULE = "every-minute"
#: Starting a hub process takes ~1.5 s of CPU; a shared 2-core machine under load needs more.
STARTUP_S = 60
RULES = f"""
rules:
  - id: issue-opened
    on: github.issues.opened
    actions:
      - log: {{to: inbox, message: "issue {{{{ event.id }}}}"}}
  - id: {TICK_RULE}
    schedule: "* * * * *"
    actions:
      - log: {{to: inbox, message: "tick {{{{ event.data.fields.tick }}}}"}}
"""


@dataclass(frozen=True, slots=True)
class HubProcess:
    """One hub process (or set of replicas) as a deploy file declares it, paths unmapped."""

    name: str
    argv: list[str]
    env: dict[str, str]
    workdir: str
    replicas: int


# --- reading the deploy files --------------------------------------------------------------


def _image() -> tuple[list[str], list[str], dict[str, str], str]:
    """The runtime stage's ENTRYPOINT, CMD, ENV and WORKDIR (what every container starts from)."""
    instructions = _dockerfile()
    last_from = max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM")
    runtime = instructions[last_from:]
    env: dict[str, str] = {}
    for ins, args in runtime:
        if ins == "ENV":
            env.update(dict(word.split("=", 1) for word in shlex.split(args)))
    workdir = [args for ins, args in runtime if ins == "WORKDIR"][-1]
    entrypoint = [json.loads(args) for ins, args in runtime if ins == "ENTRYPOINT"][-1]
    cmd = [json.loads(args) for ins, args in runtime if ins == "CMD"][-1]
    return entrypoint, cmd, env, workdir


def _compose_processes() -> list[HubProcess]:
    entrypoint, cmd, image_env, workdir = _image()
    out = []
    for name, service in _compose()["services"].items():
        if service.get("build", {}).get("dockerfile") != "deploy/Dockerfile":
            continue  # postgres, redis
        # docker compose reads env_file, then `environment:` overrides it.
        assert service["env_file"] == ".env", f"compose {name}: env_file"
        env = {**image_env, **_env_example_set(), **service.get("environment", {})}
        out.append(
            HubProcess(
                name=f"compose-{name}",
                argv=list(service.get("entrypoint", entrypoint))
                + list(service.get("command", cmd)),
                env={k: str(v) for k, v in env.items()},
                workdir=service.get("working_dir", workdir),
                replicas=int(service.get("deploy", {}).get("replicas", 1)),
            )
        )
    return out


def _k8s_processes() -> list[HubProcess]:
    """The hub containers of the Deployments in the files kustomization.yaml lists."""
    entrypoint, cmd, image_env, workdir = _image()
    [kustomization] = _documents(K8S / "kustomization.yaml")
    objects = [d for f in kustomization["resources"] for d in _documents(K8S / f)]
    secrets = {o["metadata"]["name"]: o["stringData"] for o in objects if o["kind"] == "Secret"}
    out = []
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if "switchboard" not in container["image"]:
                continue
            env = dict(image_env)
            for source in container.get("envFrom", []):
                env.update(secrets[source["secretRef"]["name"]])
            env.update({e["name"]: e["value"] for e in container.get("env", [])})
            out.append(
                HubProcess(
                    name=f"{deployment['metadata']['name']}-{container['name']}",
                    argv=container.get("command", entrypoint) + container.get("args", cmd),
                    env=env,
                    workdir=container.get("workingDir", workdir),
                    replicas=int(deployment["spec"].get("replicas", 1)),
                )
            )
    return out


def _unit_service(path: Path) -> dict[str, list[str]]:
    """The [Service] section, every value of a repeated key kept (Environment=)."""
    section = ""
    values: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service":
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def _systemd_processes() -> list[HubProcess]:
    out = []
    for unit in sorted(SYSTEMD.glob("*.service")):
        service = _unit_service(unit)
        env: dict[str, str] = {}
        for env_file in service.get("EnvironmentFile", []):
            # operations.md: install deploy/.env.example as /etc/switchboard/switchboard.env.
            assert env_file == "/etc/switchboard/switchboard.env", f"{unit.name}: {env_file}"
            env.update(_env_example_set())
        for assignments in service.get("Environment", []):
            env.update(dict(word.split("=", 1) for word in shlex.split(assignments)))
        [exec_start] = service["ExecStart"]
        out.append(
            HubProcess(
                name=unit.stem.rstrip("@"),
                argv=shlex.split(exec_start),
                env=env,
                workdir=service["WorkingDirectory"][-1],
                replicas=1,  # a template unit (worker@) runs as many instances as enabled
            )
        )
    return out


SHAPES: dict[str, Callable[[], list[HubProcess]]] = {
    "compose": _compose_processes,
    "k8s": _k8s_processes,
    "systemd": _systemd_processes,
}


# --- running them here ---------------------------------------------------------------------


def _host_paths(root: Path) -> Callable[[str], str]:
    """Container and unit paths → this machine's: the venv, and dirs under `root`."""
    prefixes = {
        "/opt/switchboard/venv/bin": str(VENV_BIN),  # systemd: the venv of operations.md
        "/opt/venv/bin": str(VENV_BIN),  # the image's venv
        "/etc/switchboard": str(root / "etc" / "switchboard"),
        "/var/lib/switchboard": str(root / "var" / "lib" / "switchboard"),
    }

    def host(value: str) -> str:
        for container, here in prefixes.items():
            value = value.replace(container, here)
        return value

    return host


@dataclass(frozen=True, slots=True)
class Spawned:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    scheduler: bool

    def started(self) -> bool:
        """The start-up line (`switchboard: scheduler 123 running`, ...) is out."""
        return b"switchboard: " in self.log.read_bytes()


def _start(process: HubProcess, *, root: Path, urls: dict[str, str], port: int) -> list[Spawned]:
    host = _host_paths(root)
    missing = [name for name in SERVICE_URLS if name not in process.env]
    assert not missing, f"{process.name}: the deploy file gives no {missing}"
    env = {k: host(v) for k, v in {**process.env, **urls}.items()}
    # The process starts with only what the file gives it (a container or a unit inherits
    # nothing else); a PATH that names the host's ($PATH) is the host's search path.
    env["PATH"] = env.get("PATH", "$PATH").replace("$PATH", os.environ.get("PATH", ""))
    binary = shutil.which(host(process.argv[0]), path=env["PATH"])
    assert binary is not None, f"{process.name}: {process.argv[0]} is not on the PATH"
    assert Path(binary) == VENV_BIN / "switchboard", f"{process.name}: runs {binary}"
    args = list(process.argv[1:])
    parsed = cli._parser().parse_args(args)
    replicas = process.replicas
    if parsed.run is cli._serve:
        # Listen where this test can reach it; one ingress is enough to post to.
        for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):
            if flag in args:
                args[args.index(flag) + 1] = value
        replicas = 1
    elif parsed.run is cli._worker:
        replicas = 1  # any worker takes any event (tests/integration/test_processes.py)
    workdir = Path(host(process.workdir))
    workdir.mkdir(parents=True, exist_ok=True)
    spawned = []
    for n in range(1, replicas + 1):
        log = root / "logs" / f"{process.name}-{n}.log"
        with log.open("wb") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                [binary, *args], env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT
            )
        spawned.append(Spawned(f"{process.name}-{n}", proc, log, parsed.run is cli._scheduler))
    return spawned


def _write_config(root: Path, *, namespace: str, port: int) -> None:
    """switchboard.yaml and rules/ where the deploy files mount them; store and broker URLs
    are left to the environment the files give."""
    etc = root / "etc" / "switchboard"
    (etc / "rules").mkdir(parents=True)
    (etc / "rules" / "deploy.yaml").write_text(RULES, encoding="utf-8")
    (etc / "switchboard.yaml").write_text(
        f"""
server: {{host: 127.0.0.1, port: {port}}}
broker: {{namespace: "{namespace}"}}
worker: {{threads: 2, lease_seconds: 60, http_timeout_seconds: 5}}
rules: {{path: rules}}
sources:
  github: {{secret: {{env: SWITCHBOARD_SECRET_GITHUB}}}}
destinations:
  inbox: {{connector: log, path: {root / "var" / "lib" / "switchboard" / "inbox.log"}}}
""",
        encoding="utf-8",
    )
    (root / "logs").mkdir()


def _inbox(root: Path) -> list[dict[str, Any]]:
    path = root / "var" / "lib" / "switchboard" / "inbox.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _wait(running: list[Spawned], predicate: Callable[[], bool], what: str) -> None:
    """wait_until, but fail at once, naming it, when one of `running` has exited."""

    def check() -> bool:
        exited = [f"{s.name} ({s.proc.returncode})" for s in running if s.proc.poll() is not None]
        assert not exited, f"exited before {what}: {', '.join(exited)}"
        return predicate()

    wait_until(check, STARTUP_S, what)


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _stop(spawned: list[Spawned]) -> dict[str, int | None]:
    """SIGTERM, as docker, kubelet and systemd stop them; each one's exit status."""
    for s in spawned:
        s.proc.send_signal(signal.SIGTERM)
    codes: dict[str, int | None] = {}
    for s in spawned:
        try:
            codes[s.name] = s.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            codes[s.name] = None
    return codes


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_deployed_processes_deliver_a_webhook_and_fire_a_schedule(
    shape: str, tmp_path: Path, postgres_url: str, redis_namespace: str
) -> None:
    processes = SHAPES[shape]()
    assert processes, f"deploy/ declares no hub process for {shape}"
    port = free_port()
    _write_config(tmp_path, namespace=redis_namespace, port=port)
    urls = {"SWITCHBOARD_DATABASE_URL": postgres_url, "SWITCHBOARD_REDIS_URL": REDIS_URL_FOR_TESTS}
    # given a schedule some scheduler saw 90 s ago, whose newest minute mark nobody fired
    store = open_store(postgres_url)
    spec = parse_schedule("* * * * *").spec
    seen_at = SystemClock().now().timestamp() - 90
    schedules.mark_seen(store, rule_id=TICK_RULE, spec=spec, at=seen_at, scheduler="earlier")
    spawned: list[Spawned] = []
    codes: dict[str, int | None] = {}
    fired: list[schedules.TickRow] = []
    try:
        for process in processes:
            spawned += _start(process, root=tmp_path, urls=urls, port=port)
        _wait(spawned, lambda: _answers(f"http://127.0.0.1:{port}"), f"the {shape} ingress is up")
        # when a signed webhook is posted to the ingress
        secret = processes[0].env["SWITCHBOARD_SECRET_GITHUB"]
        body = fixture_path("github", "issues", "opened.json").read_bytes()
        headers = github_headers(body, event="issues", delivery=f"deploy-{shape}", secret=secret)
        response = httpx.post(
            f"http://127.0.0.1:{port}/hooks/github", content=body, headers=headers, timeout=10
        )
        assert response.status_code == 202, response.text
        event_id = response.json()["id"]
        # then the workers deliver it, and the scheduler fires the missed tick
        _wait(
            spawned,
            lambda: any(r["event_id"] == event_id for r in _inbox(tmp_path)),
            f"the {shape} webhook reached the log destination",
        )
        _wait(
            spawned,
            lambda: any(r["rule"] == TICK_RULE for r in _inbox(tmp_path)),
            f"a schedule: rule fired and was delivered ({shape} runs `switchboard scheduler`?)",
        )
        # Every scheduler replica has started (its first check completes before it exits);
        # stop them, then let the workers deliver whatever they fired (a minute may turn).
        schedulers = [s for s in spawned if s.scheduler]
        _wait(spawned, lambda: all(s.started() for s in schedulers), "schedulers started")
        codes = _stop(schedulers)
        others = [s for s in spawned if not s.scheduler]
        fired = [t for t in schedules.list_ticks(store, rule_id=TICK_RULE) if t.status == "fired"]
        _wait(
            others,
            lambda: (
                {f"tick {_iso(t.tick_at)}" for t in fired}
                <= {r["message"] for r in _inbox(tmp_path) if r["rule"] == TICK_RULE}
            ),
            "every fired tick delivered",
        )
    finally:
        codes.update(_stop([s for s in spawned if s.proc.returncode is None]))
        store.close()
        logs = "\n".join(f"--- {s.name}\n{s.log.read_text(errors='replace')}" for s in spawned)
        print(logs)  # shown with a failure, whichever step failed
    inbox = _inbox(tmp_path)
    ticks = Counter(r["message"] for r in inbox if r["rule"] == TICK_RULE)
    # Each fired tick delivered once, whatever the number of schedulers; at least one fired.
    assert fired, logs
    assert ticks == Counter(f"tick {_iso(t.tick_at)}" for t in fired), (ticks, logs)
    assert [r["message"] for r in inbox if r["rule"] == "issue-opened"] == [f"issue {event_id}"]
    assert "Traceback" not in logs, logs
    # SIGTERM is how docker, the kubelet and systemd stop them: each exits in time, by
    # itself (uvicorn re-raises the SIGTERM it caught once its graceful shutdown is done).
    assert all(code in (0, -signal.SIGTERM) for code in codes.values()), (codes, logs)


def _iso(tick_at: float) -> str:
    """A tick as the event carries it (`event.data.fields.tick`)."""
    return format_time(datetime.fromtimestamp(tick_at, tz=UTC))
