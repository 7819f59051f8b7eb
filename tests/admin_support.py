"""Helpers for the admin API, dashboard, metrics and browser tests: a hub with `admin:`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from hub.admin.session import LOGIN_COOKIE
from hub.app import create_app
from hub.auth.passwords import hash_password
from hub.config import Settings, load_settings
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from tests.fakes.discord import FakeDiscord, served_discord
from tests.support import DEFAULT_RULES, GITHUB_SECRET, fixture_path, write_config

ADMIN_TOKEN = "adm-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"
OPERATOR_TOKEN = "oper-token-0123456789abcdef"
PASSWORD = "correct horse battery staple"
DISCORD_TOKEN = "discord-hook-secret-token-xyz"
ISSUE_OPENED = fixture_path("github", "issues", "opened.json").read_bytes()

ADMIN_YAML = """
admin:
  tokens:
    - {{name: ops, role: admin, token: {{env: TEST_ADMIN_TOKEN}}}}
    - {{name: viewer, role: read, token: {{env: TEST_READ_TOKEN}}}}
    - {{name: oncall, role: operator, token: {{env: TEST_OPERATOR_TOKEN}}}}
  users:
    - {{username: ada, role: admin, password_hash: "{hash}"}}
    - {{username: bob, role: read, password_hash: {{env: TEST_BOB_HASH}}}}
"""


def admin_env() -> dict[str, str]:
    """The environment ADMIN_YAML's secrets are read from."""
    return {
        "TEST_ADMIN_TOKEN": ADMIN_TOKEN,
        "TEST_READ_TOKEN": READ_TOKEN,
        "TEST_OPERATOR_TOKEN": OPERATOR_TOKEN,
        "TEST_BOB_HASH": hash_password(PASSWORD),
    }


def admin_settings(
    tmp_path: Path,
    *,
    discord_url: str | None = None,
    extra_sources: str = "",
    rules: str = DEFAULT_RULES,
    admin_extra: str = "",
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """The standard test config (github → discord + log) plus an `admin:` section;
    `admin_extra` goes on after it (more `admin:` keys, or further sections), and
    `environ` adds to the environment its secrets are read from."""
    config = write_config(tmp_path, extra_sources=extra_sources, rules=rules)
    with config.open("a", encoding="utf-8") as out:
        out.write(ADMIN_YAML.format(hash=hash_password(PASSWORD)) + admin_extra)
    env = {"SWITCHBOARD_SECRET_GITHUB": GITHUB_SECRET, **admin_env(), **(environ or {})}
    if discord_url:
        env["TEST_DISCORD_WEBHOOK_URL"] = discord_url
    return load_settings(config, environ=env, plugins=load_plugins())


@contextmanager
def admin_hub(
    tmp_path: Path,
    *,
    run_worker: bool = True,
    discord_url: str | None = None,
    extra_sources: str = "",
    rules: str = DEFAULT_RULES,
    admin_extra: str = "",
    environ: Mapping[str, str] | None = None,
) -> Iterator[tuple[Runtime, TestClient]]:
    """A running hub (with its in-process worker unless `run_worker` is off) and a
    TestClient on it; the config as `admin_settings` writes it."""
    settings = admin_settings(
        tmp_path,
        discord_url=discord_url,
        extra_sources=extra_sources,
        rules=rules,
        admin_extra=admin_extra,
        environ=environ,
    )
    runtime = build_runtime(settings, load_plugins())
    try:
        with TestClient(create_app(runtime, run_worker=run_worker)) as client:
            yield runtime, client
    finally:
        runtime.close()


def login(client: TestClient, **fields: str) -> httpx.Response:
    """Sign in to the dashboard with `fields` (token=… or username/password), CSRF included."""
    client.get("/admin/login")
    csrf = client.cookies.get(LOGIN_COOKIE)
    assert csrf
    response: httpx.Response = client.post(
        "/admin/login", data={"csrf": csrf, **fields}, follow_redirects=False
    )
    return response


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(name="discord")
def admin_discord() -> Iterator[tuple[FakeDiscord, str]]:
    """The `discord` fixture with DISCORD_TOKEN in its webhook URL, the secret the admin
    views must mask. A module imports this function (noqa: F401)."""
    with served_discord(DISCORD_TOKEN) as served:
        yield served
