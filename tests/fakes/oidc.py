"""A small OpenID provider for tests: discovery, JWKS, an authorize endpoint that
consents at once, and a token endpoint that checks the PKCE verifier and client secret
and issues an RS256 ID token. `Misbehave` makes it issue the bad tokens tests need.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class Misbehave:
    """What the next ID tokens get wrong (all None: a good token)."""

    audience: str | None = None
    expires_in: int = 300
    nonce: str | None = None
    #: Sign with another key than the one the JWKS publishes (same kid).
    foreign_key: bool = False


@dataclass
class FakeProvider:
    client_id: str
    client_secret: str
    subject: str = "u-1"
    email: str = "carol@example.com"
    groups: list[str] = field(default_factory=lambda: ["eng", "oncall"])
    misbehave: Misbehave = field(default_factory=Misbehave)
    issuer: str = ""
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    other_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: int = 0

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
            ]
        )

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token",
                "jwks_uri": self.issuer + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def jwks(self, request: Request) -> Response:
        return JSONResponse({"keys": [self.key.as_dict(private=False)]})

    async def authorize(self, request: Request) -> Response:
        q = request.query_params
        if q.get("client_id") != self.client_id or q.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {
            "nonce": q.get("nonce", ""),
            "challenge": q.get("code_challenge", ""),
            "redirect_uri": q.get("redirect_uri", ""),
        }
        back = urlencode({"code": code, "state": q.get("state", "")})
        return RedirectResponse(f"{q.get('redirect_uri')}?{back}", status_code=302)

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        expected = (
            "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        )
        if not hmac.compare_digest(request.headers.get("authorization", ""), expected):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = form.get("code_verifier", "")
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        if challenge != grant["challenge"]:
            return JSONResponse({"error": "invalid_grant", "reason": "pkce"}, status_code=400)
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "id_token": self.id_token(grant["nonce"]),
            }
        )

    def id_token(self, nonce: str) -> str:
        bad = self.misbehave
        now = int(time.time())  # noqa: TID251  (the provider is another system: real time)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": bad.audience or self.client_id,
            "iat": now,
            "exp": now + bad.expires_in,
            "nonce": bad.nonce or nonce,
            "email": self.email,
            "groups": self.groups,
        }
        key = self.other_key if bad.foreign_key else self.key
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
