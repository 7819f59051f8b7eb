"""Who is asking: bearer tokens and passwords checked against the `admin:` settings.

Every configured token is compared (constant time, via digests of equal length), so the
time taken says nothing about which token, or how much of one, was right.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from hub.auth.passwords import verify_password
from hub.auth.roles import RAW_PAYLOAD_ROLE, Need, Role, allows, role_name
from hub.auth.settings import AdminSettings


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller; `name` is the token's or user's name, never the secret."""

    name: str
    role: Role

    def may(self, need: Need) -> bool:
        """Whether this caller's role is enough for a route or action that needs `need`."""
        return allows(self.role, need)

    @property
    def can_operate(self) -> bool:
        """Replay, simulate, reload rules (templates show those buttons only then)."""
        return self.may("operator")

    @property
    def is_admin(self) -> bool:
        return self.may("admin")

    @property
    def sees_payloads(self) -> bool:
        """Raw webhook bodies and headers may hold personal data: viewers never see them."""
        return self.may(RAW_PAYLOAD_ROLE)


class Credentials:
    """Checks tokens and passwords; built once from the settings."""

    def __init__(self, settings: AdminSettings) -> None:
        self._tokens = [
            (_digest(t.token.reveal()), Principal(t.name, t.role)) for t in settings.tokens
        ]
        self._users = {u.username: u for u in settings.users}
        #: Sessions of single sign-on users (role from the provider at login) are honoured
        #: only while `admin.oidc` is configured.
        self.oidc_enabled = settings.oidc is not None
        if settings.session_secret is not None:
            self.session_key = settings.session_secret.reveal().encode()
        else:
            material = "\x1f".join(
                [t.token.reveal() for t in settings.tokens]
                + [u.password_hash.reveal() for u in settings.users]
            )
            seed = b"switchboard-session\x1f" + material.encode()
            self.session_key = hashlib.sha256(seed).digest()

    def by_token(self, token: str) -> Principal | None:
        given = _digest(token)
        found: Principal | None = None
        for digest, principal in self._tokens:
            if hmac.compare_digest(given, digest) and found is None:
                found = principal
        return found

    def by_password(self, username: str, password: str) -> Principal | None:
        user = self._users.get(username)
        if user is None:
            # Spend the same time as a real check so usernames cannot be probed by timing.
            verify_password(password, _DUMMY_HASH)
            return None
        if not verify_password(password, user.password_hash.reveal()):
            return None
        return Principal(user.username, user.role)

    def principal_for(self, name: str, role: str, via: str = "") -> Principal | None:
        """Re-check a session's principal: it must still exist with that role."""
        try:
            role = role_name(role)  # sessions signed before `read` became `viewer`
        except ValueError:
            return None
        if via == "oidc":
            return Principal(name, role) if self.oidc_enabled else None
        if via:
            return None
        for _, principal in self._tokens:
            if principal.name == name and principal.role == role:
                return principal
        user = self._users.get(name)
        if user is not None and user.role == role:
            return Principal(user.username, user.role)
        return None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


#: A valid hash of a random password, for timing-equal misses.
_DUMMY_HASH = (
    "scrypt$16384$8$1$c3dpdGNoYm9hcmQtZHVtbXk=$6fPv0dXqu0nC+4l0xN3rYk3s2d0oQyH3bC5jz1m7a2E="
)
