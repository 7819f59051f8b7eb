"""The `admin:` section of switchboard.yaml: who may view, operate or administer the hub.

Tokens and password hashes are secret references, resolved here at load time like every
other secret; the rest of the admin code only sees `AdminSettings`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from connectors.base import parse_duration
from hub.auth.roles import Role, role_name
from hub.errors import ConfigError, ConfigErrors
from hub.secrets import MissingSecret, Secret, resolve_secret_ref
from hub.yamldoc import YamlDocument


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminToken:
    """An API/dashboard bearer token."""

    name: str
    role: Role
    token: Secret


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminUser:
    """A dashboard user; `password_hash` is `scrypt$n$r$p$salt$hash` (see hub.auth.passwords)."""

    username: str
    role: Role
    password_hash: Secret


#: `admin.mfa`: off; optional (password users may enroll a TOTP app, then must use it);
#: required (password users must enroll before their first session).
MfaMode = Literal["off", "optional", "required"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OidcSettings:
    """`admin.oidc`: sign in through an OpenID Connect provider (hub/admin/oidc.py)."""

    issuer: str
    client_id: str
    client_secret: Secret | None
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    #: A claim holding a role name, or a claim holding a list of groups mapped by role_map.
    role_claim: str | None = None
    groups_claim: str | None = None
    role_map: Mapping[str, Role] = field(default_factory=dict)
    #: The role of a user no claim maps; None refuses them.
    default_role: Role | None = None
    #: The claim naming the user in the dashboard and the audit trail.
    name_claim: str = "email"


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminSettings:
    tokens: tuple[AdminToken, ...] = ()
    users: tuple[AdminUser, ...] = ()
    #: Signs session cookies; when unset it is derived from all tokens and hashes, so every
    #: hub process agrees on it and changing a credential logs everyone out.
    session_secret: Secret | None = None
    session_ttl_s: float = 12 * 3600.0
    secure_cookies: bool = False
    mfa: MfaMode = "off"
    oidc: OidcSettings | None = None

    def secret_values(self) -> set[str]:
        values = {t.token.reveal() for t in self.tokens}
        if self.session_secret is not None:
            values.add(self.session_secret.reveal())
        if self.oidc is not None and self.oidc.client_secret is not None:
            values.add(self.oidc.client_secret.reveal())
        return values


def admin_settings(
    doc: YamlDocument,
    *,
    environ: Mapping[str, str],
    base_dir: Path,
    missing: list[str] | None = None,
) -> AdminSettings | None:
    """Parse `admin:`; None when the section is absent (no API, no dashboard)."""
    raw = doc.data.get("admin")
    if raw is None:
        return None
    errors: list[ConfigError] = []

    def secret(value: Any, at: tuple[str | int, ...]) -> Secret | None:
        where = ".".join(str(p) for p in at)
        if isinstance(value, str):  # only password hashes may be inline (the schema says so)
            return Secret(value, origin=f"inline:{where}")
        try:
            return resolve_secret_ref(value, environ=environ, base_dir=base_dir, where=where)
        except MissingSecret as exc:
            if missing is None:
                errors.append(ConfigError(exc.message, location=doc.locate(at), hint=exc.hint))
            else:
                missing.append(f"{where} ({exc.reference})")
            return None
        except ConfigError as exc:
            errors.append(ConfigError(exc.message, location=doc.locate(at), hint=exc.hint))
            return None

    tokens = []
    for index, item in enumerate(raw.get("tokens") or []):
        value = secret(item["token"], ("admin", "tokens", index, "token"))
        if value is not None:
            role = role_name(item.get("role", "viewer"))
            tokens.append(AdminToken(name=item["name"], role=role, token=value))
    users = []
    for index, item in enumerate(raw.get("users") or []):
        at = ("admin", "users", index, "password_hash")
        value = secret(item["password_hash"], at)
        if value is not None and not value.reveal().startswith("scrypt$"):
            errors.append(
                ConfigError(
                    f"admin.users.{index}.password_hash is not a scrypt hash",
                    location=doc.locate(at),
                    hint="make one with `switchboard admin hash-password`",
                )
            )
        elif value is not None:
            role = role_name(item.get("role", "viewer"))
            users.append(AdminUser(username=item["username"], role=role, password_hash=value))
    session = raw.get("session_secret")
    session_secret = secret(session, ("admin", "session_secret")) if session else None
    oidc = _oidc(raw.get("oidc"), secret)
    if errors:
        raise ConfigErrors(errors)
    return AdminSettings(
        tokens=tuple(tokens),
        users=tuple(users),
        session_secret=session_secret,
        session_ttl_s=parse_duration(raw.get("session_ttl", "12h")).total_seconds(),
        secure_cookies=bool(raw.get("secure_cookies", False)),
        mfa=_mfa_mode(raw.get("mfa", "off")),
        oidc=oidc,
    )


def _mfa_mode(value: Any) -> MfaMode:
    if value == "optional":
        return "optional"
    if value == "required":
        return "required"
    return "off"


def _oidc(
    raw: Mapping[str, Any] | None, secret: Callable[[Any, tuple[str | int, ...]], Secret | None]
) -> OidcSettings | None:
    if raw is None:
        return None
    ref = raw.get("client_secret")
    return OidcSettings(
        issuer=str(raw["issuer"]).rstrip("/"),
        client_id=str(raw["client_id"]),
        client_secret=secret(ref, ("admin", "oidc", "client_secret")) if ref else None,
        scopes=tuple(raw.get("scopes") or ("openid", "email", "profile")),
        role_claim=raw.get("role_claim"),
        groups_claim=raw.get("groups_claim"),
        role_map={str(k): role_name(v) for k, v in (raw.get("role_map") or {}).items()},
        default_role=role_name(raw["default_role"]) if raw.get("default_role") else None,
        name_claim=str(raw.get("name_claim", "email")),
    )
