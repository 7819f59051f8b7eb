"""Login throttling behind (or without) a reverse proxy, through real uvicorn as `serve`
runs it: X-Forwarded-For is believed only from proxies named in server.trusted_proxies."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from hub.admin.session import LOGIN_COOKIE
from hub.app import create_app
from hub.auth.passwords import hash_password
from hub.cli import uvicorn_options
from hub.config import load_settings
from hub.errors import ConfigError
from hub.plugins import load_plugins
from hub.runtime import build_runtime
from tests.admin_support import ADMIN_YAML, PASSWORD, admin_env
from tests.support import GITHUB_SECRET, free_port, wait_until, write_config

PLUGINS = load_plugins()


def _config(tmp_path: Path, trusted: str) -> Path:
    config = write_config(tmp_path)
    text = config.read_text().replace(
        "server: {max_body_bytes: 1048576}",
        f"server: {{max_body_bytes: 1048576, trusted_proxies: {trusted}}}",
    )
    config.write_text(text + ADMIN_YAML.format(hash=hash_password(PASSWORD)))
    return config


@contextmanager
def served(tmp_path: Path, trusted: str) -> Iterator[str]:
    env = {"SWITCHBOARD_SECRET_GITHUB": GITHUB_SECRET, **admin_env()}
    settings = load_settings(_config(tmp_path, trusted), environ=env, plugins=PLUGINS)
    runtime = build_runtime(settings, PLUGINS)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime, run_worker=False), host="127.0.0.1", port=port, **uvicorn_options()
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 10, "hub on uvicorn started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.close()


def _wrong_logins(base: str, count: int, forwarded: str) -> list[int]:
    statuses = []
    with httpx.Client(base_url=base) as client:
        for n in range(count):
            client.get("/admin/login")
            csrf = client.cookies.get(LOGIN_COOKIE) or ""
            answer = client.post(
                "/admin/login",
                data={"csrf": csrf, "token": "wrong"},
                headers={"X-Forwarded-For": forwarded.format(n=n)},
            )
            statuses.append(answer.status_code)
    return statuses


def test_a_client_cannot_escape_the_throttle_by_changing_x_forwarded_for(
    tmp_path: Path,
) -> None:
    with served(tmp_path, "[]") as base:
        statuses = _wrong_logins(base, 11, "203.0.113.{n}")
    assert statuses == [401] * 10 + [429]


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(tmp_path: Path) -> None:
    with served(tmp_path, "[127.0.0.1]") as base:
        locked = _wrong_logins(base, 11, "203.0.113.9")
        other = _wrong_logins(base, 1, "198.51.100.4")
        # a client's own header left of the proxy's entry proves nothing
        spoofed = _wrong_logins(base, 1, "198.51.100.4, 203.0.113.9")
    assert locked == [401] * 10 + [429]
    assert other == [401]  # one locked-out address does not lock out another
    assert spoofed == [429]


def test_trusted_proxies_must_be_addresses_or_networks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'proxy\.example' is not an IP address or network"):
        load_settings(
            _config(tmp_path, "[proxy.example]"),
            environ={"SWITCHBOARD_SECRET_GITHUB": GITHUB_SECRET},
            plugins=PLUGINS,
        )
