"""Signed session cookies for the dashboard: who, which role, a CSRF token, an expiry.

The cookie is `base64(json).base64(hmac-sha256)`; nothing secret is inside, it is only
tamper-proof. The CSRF token in it must come back in every POST form (synchronizer
token), and the cookie is HttpOnly and SameSite=Lax on top.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE = "switchboard_session"
LOGIN_COOKIE = "switchboard_login"


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    role: str
    csrf: str
    expires_at: float
    #: Status messages for the next page only (flash). They live in the signed cookie, so
    #: only the hub can put text there; a link cannot make the dashboard say anything.
    flash: tuple[str, ...] = ()
    #: How the principal was found when it is not in switchboard.yaml: "oidc" (its role
    #: came from the provider's claims at login). Empty for tokens and configured users.
    via: str = ""


def new_session(name: str, role: str, *, now: float, ttl_s: float, via: str = "") -> Session:
    return Session(name, role, secrets.token_urlsafe(24), now + ttl_s, via=via)


def encode_session(session: Session, key: bytes) -> str:
    data: dict[str, object] = {
        "n": session.name,
        "r": session.role,
        "c": session.csrf,
        "e": session.expires_at,
    }
    if session.flash:
        data["f"] = list(session.flash)
    if session.via:
        data["v"] = session.via
    body = json.dumps(data, separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(body).decode().rstrip("=")
    return f"{payload}.{_sign(payload, key)}"


def decode_session(value: str | None, key: bytes, *, now: float) -> Session | None:
    """The session in a cookie, or None if missing, forged or expired."""
    if not value or "." not in value:
        return None
    payload, _, signature = value.rpartition(".")
    if not hmac.compare_digest(signature, _sign(payload, key)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        flash = tuple(str(m) for m in data.get("f") or ())
        via = str(data.get("v") or "")
        session = Session(
            str(data["n"]), str(data["r"]), str(data["c"]), float(data["e"]), flash, via
        )
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        return None
    return session if session.expires_at > now else None


def csrf_matches(session: Session, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(session.csrf, submitted or "")


def _sign(payload: str, key: bytes) -> str:
    digest = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
