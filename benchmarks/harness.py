"""Shared plumbing of the process-level benchmarks: ports, processes, configs, payloads.

Everything listens on 127.0.0.1 only. Hub processes are started the way an operator starts
them (`python -m hub -c switchboard.yaml serve|worker`), each with its own log file, in a
temporary directory with its own SQLite store; Redis state lives under a unique namespace
that is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
#: The checkout whose hub the benchmarks start (`python -m hub` imports it from its working
#: directory): this one, or another (a `git worktree` of an older commit) set with
#: `use_tree`, so before and after are measured in one run.
TREE = REPO
BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable
SECRET = "bench-secret-not-real"
SHARED_ISSUES = REPO.parent / "shared" / "fixtures" / "github" / "issues"
RULES_FIXTURE = REPO / "rules" / "fixtures" / "github" / "issues.opened.json"
#: Redis DB and key prefix of the benchmarks: never the tests' `sbtest-*` namespaces.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/3"
#: The events table's column of the provider's delivery id, newest name first: a tree from
#: before #22's rename (`--before`, `--tree`) calls it `delivery_id`.
DELIVERY_ID_COLUMNS = ("provider_delivery_id", "delivery_id")
#: Environment variables that would silently re-point a hub process elsewhere.
_HUB_ENV_OVERRIDES = ("SWITCHBOARD_DATABASE_URL", "SWITCHBOARD_REDIS_URL", "SWITCHBOARD_CONFIG")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def issue_headers(body: bytes, delivery: str, signature: str | None = None) -> dict[str, str]:
    """A signed GitHub `issues` delivery's headers (`signature`: precomputed, else signed)."""
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": signature or sign(body),
    }


def accepted_event_id(status: int, payload: bytes) -> str:
    """The event id in ingress's answer to a 200/202, else ""."""
    if status not in (200, 202):
        return ""
    try:
        return str(json.loads(payload).get("id", ""))
    except ValueError:
        return ""


def issue_fixtures() -> list[tuple[str, bytes]]:
    """Real GitHub `issues` payloads: every shared fixture, else the repo's own one."""
    files = sorted(SHARED_ISSUES.glob("*.json")) if SHARED_ISSUES.is_dir() else []
    if not files:
        files = [RULES_FIXTURE]
    return [(f.name, f.read_bytes()) for f in files]


def opened_fixture() -> dict[str, Any]:
    path = SHARED_ISSUES / "opened.json"
    data: dict[str, Any] = json.loads((path if path.is_file() else RULES_FIXTURE).read_bytes())
    return data


class IssueBodies:
    """`issues.opened` bodies of the real fixture, one distinct issue per number.

    Real traffic at hundreds of events/s spans many issues; deliveries for one issue are
    sent in order (one at a time), so reusing a single issue would measure that queue.
    """

    _NUMBER = 987654321
    _ID = 876543219

    def __init__(self) -> None:
        payload = opened_fixture()
        issue = payload["issue"]
        issue["number"] = self._NUMBER
        issue["id"] = self._ID
        issue["html_url"] = issue["html_url"].rsplit("/", 1)[0] + f"/{self._NUMBER}"
        self._template = json.dumps(payload).encode()

    def body(self, n: int) -> bytes:
        return self._template.replace(str(self._NUMBER).encode(), str(n).encode()).replace(
            str(self._ID).encode(), str(self._ID + n + 1).encode()
        )


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of unsorted values; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def hub_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _HUB_ENV_OVERRIDES}
    env["SWITCHBOARD_SECRET_GITHUB"] = SECRET
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def write_config(
    workdir: Path,
    *,
    broker_url: str,
    namespace: str,
    rules: str,
    destinations: str,
    threads: int = 4,
    lease_seconds: float = 60,
    store_url: str | None = None,
    group_commit: str = "thread",
) -> Path:
    """A switchboard.yaml with the github source, the given destinations and one rule file.

    The store is SQLite in `workdir` unless `store_url` names another (PostgreSQL)."""
    (workdir / "rules").mkdir(parents=True, exist_ok=True)
    (workdir / "rules" / "bench.yaml").write_text(rules, encoding="utf-8")
    config = workdir / "switchboard.yaml"
    # Written only when not the default: an older tree measured beside this one (--before)
    # does not know the key.
    commit = f", group_commit: {group_commit}" if group_commit != "thread" else ""
    config.write_text(
        f"""
server: {{host: 127.0.0.1, max_body_bytes: 1048576{commit}}}
store: {{url: "{store_url or f"sqlite:///{workdir / 'hub.db'}"}"}}
broker: {{url: "{broker_url}", namespace: "{namespace}"}}
worker: {{threads: {threads}, lease_seconds: {lease_seconds}}}
rules: {{path: rules}}
sources:
  github: {{secret: {{env: SWITCHBOARD_SECRET_GITHUB}}}}
destinations:
{destinations}
""",
        encoding="utf-8",
    )
    return config


@dataclass
class Proc:
    """A child process with its log file; `stop` is SIGTERM then SIGKILL."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout_s: float = 15) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def spawn(name: str, args: Sequence[str], *, env: dict[str, str], log: Path) -> Proc:
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        popen = subprocess.Popen(
            list(args), env=env, stdout=out, stderr=subprocess.STDOUT, cwd=TREE
        )
    return Proc(name, popen, log)


def use_tree(tree: Path) -> None:
    """Start the hub of `tree` from now on (a checkout of this repository), with the
    tree's own venv when it has one (`<tree>/.venv`: its plugins' entry points are its
    own), else this one's."""
    global TREE, PYTHON
    if not (tree / "hub" / "__init__.py").is_file():
        raise SystemExit(f"{tree} is not a Switchboard checkout (no hub/__init__.py)")
    TREE = tree.resolve()
    own = TREE / ".venv" / "bin" / "python"
    PYTHON = str(own) if own.exists() else sys.executable


def migrate_store(config: Path, env: dict[str, str]) -> None:
    """Create (or upgrade) `config`'s store with the hub of TREE: `switchboard db upgrade`."""
    subprocess.run(
        hub_args(config, "db", "upgrade"),
        env=env,
        cwd=TREE,
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=120,
    )


def hub_args(config: Path, *rest: str) -> list[str]:
    return [PYTHON, "-m", "hub", "-c", str(config), *rest]


def wait_http(url: str, timeout_s: float, procs: Sequence[Proc] = ()) -> None:
    """Poll `url` until it answers 200; fail early (with the log tail) if a child died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for proc in procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited early:\n{proc.tail()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        pause(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s")


def pause(seconds: float) -> None:
    """Block the driver (never a server: they run in other processes)."""
    time.sleep(seconds)  # noqa: TID251 - the benchmark driver waits in real time by design


def wait_for(predicate: Any, timeout_s: float, every_s: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        pause(every_s)
    return bool(predicate())


def cleanup_redis(url: str, namespace: str) -> int:
    """Delete every key of this run's namespace; returns how many were removed."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        return len(keys)
    finally:
        client.close()


def redis_available(url: str) -> str | None:
    """None when Redis answers PING, else why not."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return str(exc)
    finally:
        client.close()
    return None


def new_namespace(prefix: str) -> str:
    return f"sbbench-{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class LoadResult:
    """What `loadgen.py` reports: per-request records and totals."""

    elapsed_s: float
    statuses: dict[str, int]
    errors: dict[str, int]
    max_lag_s: float
    #: (delivery id, event id or "", scheduled, sent, done, status) per finished request
    records: list[tuple[str, str, float, float, float, int]] = field(default_factory=list)

    @property
    def accepted(self) -> list[tuple[str, str, float, float, float, int]]:
        return [r for r in self.records if r[5] == 202]

    def latencies_ms(self) -> list[float]:
        """From the scheduled send time (open loop: no coordinated omission) to the answer."""
        return [(r[4] - r[2]) * 1000 for r in self.accepted]


def loadgen_args(
    url: str,
    *,
    rate: float,
    duration_s: float,
    concurrency: int,
    payloads: str,
    prefix: str,
    out: Path,
    start_number: int = 1,
) -> list[str]:
    return [
        PYTHON,
        str(BENCH_DIR / "loadgen.py"),
        "--url",
        url,
        "--rate",
        str(rate),
        "--duration",
        str(duration_s),
        "--concurrency",
        str(concurrency),
        "--payloads",
        payloads,
        "--prefix",
        prefix,
        "--start-number",
        str(start_number),
        "--out",
        str(out),
    ]


def read_load_result(out: Path) -> LoadResult:
    data = json.loads(out.read_text())
    return LoadResult(
        elapsed_s=data["elapsed_s"],
        statuses=data["statuses"],
        errors=data["errors"],
        max_lag_s=data["max_lag_s"],
        records=[tuple(r) for r in data["records"]],
    )


def run_loadgen(url: str, *, out: Path, timeout_s: float = 120, **kwargs: Any) -> LoadResult:
    """Run `loadgen.py` in its own process (its own GIL and core) and read its report."""
    subprocess.run(loadgen_args(url, out=out, **kwargs), check=True, timeout=timeout_s, cwd=REPO)
    return read_load_result(out)


def start_loadgen(url: str, *, out: Path, log: Path, **kwargs: Any) -> Proc:
    """The same, in the background; `finish_loadgen` waits for it and reads the report."""
    return spawn("loadgen", loadgen_args(url, out=out, **kwargs), env=dict(os.environ), log=log)


def finish_loadgen(proc: Proc, out: Path, timeout_s: float = 120) -> LoadResult:
    code = proc.popen.wait(timeout=timeout_s)
    if code != 0:
        raise RuntimeError(f"loadgen failed ({code}):\n{proc.tail()}")
    return read_load_result(out)


def stop_all(procs: Sequence[Proc], timeout_s: float = 10) -> None:
    """SIGTERM every process at once, then SIGKILL whatever is still running after timeout."""
    for proc in procs:
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                proc.popen.send_signal(signal.SIGCONT)
                proc.popen.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for proc in procs:
        try:
            proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def stopping(procs: list[Proc]) -> Iterator[list[Proc]]:
    """Stop every process in the list on the way out, whatever happened."""
    try:
        yield procs
    finally:
        for proc in procs:
            proc.stop()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
