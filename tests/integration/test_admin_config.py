"""The `admin:` section of switchboard.yaml: secret references, roles, hashes, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.auth.credentials import Credentials
from hub.auth.passwords import hash_password, verify_password
from hub.config import Settings, load_settings_text
from hub.errors import ConfigError
from hub.plugins import load_plugins

BASE = """
sources:
  github: {secret: {env: GH}}
"""


def _load(text: str, env: dict[str, str]) -> Settings:
    return load_settings_text(
        BASE + text, environ={"GH": "x" * 12, **env}, plugins=load_plugins(), base_dir=Path(".")
    )


def test_tokens_resolve_from_env_and_are_masked_in_logs() -> None:
    settings = _load(
        """
admin:
  tokens:
    - {name: ops, role: admin, token: {env: OPS_TOKEN}}
    - {name: ci, token: {env: CI_TOKEN, optional: true}}
""",
        {"OPS_TOKEN": "ops-token-value-123"},
    )
    admin = settings.admin
    assert admin is not None
    assert [(t.name, t.role) for t in admin.tokens] == [("ops", "admin")]  # ci is unset
    assert "ops-token-value-123" in settings.secret_values()
    assert "ops-token-value-123" not in repr(admin)
    credentials = Credentials(admin)
    assert credentials.by_token("ops-token-value-123") is not None
    assert credentials.by_token("ops-token-value-12") is None


def test_inline_tokens_and_unknown_roles_are_rejected_with_a_location() -> None:
    with pytest.raises(ConfigError) as info:
        _load(
            """
admin:
  tokens:
    - {name: ops, role: root, token: "plain-text-token"}
""",
            {},
        )
    message = str(info.value)
    assert "switchboard.yaml:7:25: admin.tokens.0.role: 'root' is not one of" in message
    assert "admin.tokens.0.token: 'plain-text-token' is not of type 'object'" in message


def test_a_missing_token_env_is_an_error_that_names_it() -> None:
    with pytest.raises(ConfigError, match="OPS_TOKEN is not set"):
        _load("admin:\n  tokens:\n    - {name: ops, token: {env: OPS_TOKEN}}\n", {})


def test_password_hashes_verify_only_the_right_password() -> None:
    encoded = hash_password("hunter2hunter2")
    assert encoded.startswith("scrypt$")
    assert verify_password("hunter2hunter2", encoded)
    assert not verify_password("hunter2hunter3", encoded)
    assert not verify_password("hunter2hunter2", "scrypt$garbage")
    settings = _load(
        f'admin:\n  users:\n    - {{username: ada, role: admin, password_hash: "{encoded}"}}\n',
        {},
    )
    assert settings.admin is not None
    credentials = Credentials(settings.admin)
    principal = credentials.by_password("ada", "hunter2hunter2")
    assert principal is not None
    assert principal.role == "admin"
    assert credentials.by_password("ada", "nope") is None
