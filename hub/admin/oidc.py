"""OpenID Connect sign-in for the dashboard (`admin.oidc`): authorization code with PKCE.

GET /admin/login/oidc sends the browser to the provider with a random state, nonce and
PKCE verifier (S256), kept in a short-lived cookie signed with a key derived from the
session key. The callback checks the state, exchanges the code (with the verifier and
the client secret) at the token endpoint, and verifies the ID token: signature against
the provider's JWKS (asymmetric algorithms only), issuer, audience, expiry and nonce.
The role comes from a claim (`role_claim` or `groups_claim` through `role_map`); a user
no claim maps gets `default_role`, or is refused when there is none.

Authlib builds the PKCE challenge, state, nonce and authorization URL; joserfc (Authlib's
JOSE successor, the authlib.jose module being deprecated) verifies the ID token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from authlib.common.security import generate_token  # type: ignore[import-untyped]
from authlib.common.urls import add_params_to_uri  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from hub.admin.login import start_session
from hub.auth.audit import audit
from hub.auth.credentials import Credentials, Principal
from hub.auth.roles import ROLES, Role, role_name
from hub.auth.settings import AdminSettings, OidcSettings
from hub.runtime import Runtime

log = logging.getLogger("switchboard.admin")

FLOW_COOKIE = "switchboard_oidc"
#: How long the provider may take to send the browser back.
FLOW_TTL_S = 600.0
#: Signatures accepted on ID tokens: never `none`, never HMAC with the client secret.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
#: Provider metadata and keys are fetched again after this long (keys rotate).
CACHE_S = 3600.0


class OidcRefused(Exception):
    """The sign-in is refused; the message says why (no secrets in it)."""


@dataclass(frozen=True, slots=True)
class Flow:
    state: str
    nonce: str
    verifier: str
    target: str
    expires_at: float


class OidcLogin:
    def __init__(
        self,
        oidc: OidcSettings,
        credentials: Credentials,
        settings: AdminSettings,
    ) -> None:
        self.oidc = oidc
        self.credentials = credentials
        self.settings = settings
        self._key = hmac.new(credentials.session_key, b"oidc-flow", hashlib.sha256).digest()
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: tuple[float, KeySet] | None = None

    async def start(self, request: Request) -> Response:
        try:
            metadata = await self._discover()
        except OidcRefused as exc:
            log.warning("oidc: %s", exc)
            return PlainTextResponse(f"Single sign-on is unavailable: {exc}", status_code=502)
        flow = Flow(
            state=generate_token(32),
            nonce=generate_token(32),
            verifier=generate_token(64),
            target=request.query_params.get("next", ""),
            expires_at=_now(request) + FLOW_TTL_S,
        )
        url = add_params_to_uri(
            str(metadata["authorization_endpoint"]),
            {
                "response_type": "code",
                "client_id": self.oidc.client_id,
                "redirect_uri": self._redirect_uri(request),
                "scope": " ".join(self.oidc.scopes),
                "state": flow.state,
                "nonce": flow.nonce,
                "code_challenge": create_s256_code_challenge(flow.verifier),
                "code_challenge_method": "S256",
            },
        )
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            FLOW_COOKIE,
            self._encode(flow),
            max_age=int(FLOW_TTL_S),
            path=_root(request) or "/",
            httponly=True,
            samesite="lax",  # the provider's redirect back is a top-level GET
            secure=self.settings.secure_cookies,
        )
        return response

    async def callback(self, request: Request) -> Response:
        flow = self._flow(request)
        try:
            if flow is None:
                raise OidcRefused("the sign-in expired or was not started here; try again")
            state = request.query_params.get("state", "")
            if not hmac.compare_digest(state, flow.state):
                raise OidcRefused("the state does not match this sign-in")
            if request.query_params.get("error"):
                raise OidcRefused(f"the provider refused: {request.query_params['error']}")
            code = request.query_params.get("code")
            if not code:
                raise OidcRefused("the provider sent no authorization code")
            claims = await self._id_token_claims(request, code, flow)
            principal = self.principal(claims)
        except OidcRefused as exc:
            log.info("oidc sign-in refused: %s", exc)
            await audit(
                request,
                "login",
                actor="(oidc)",
                result="failed",
                detail={"method": "oidc", "reason": str(exc)},
            )
            refused = PlainTextResponse(f"Sign-in refused: {exc}", status_code=403)
            refused.delete_cookie(FLOW_COOKIE, path=_root(request) or "/")
            return refused
        response = await start_session(
            request,
            principal,
            flow.target,
            self.credentials,
            self.settings,
            method="oidc",
            via="oidc",
        )
        response.delete_cookie(FLOW_COOKIE, path=_root(request) or "/")
        return response

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        """The user and role the verified claims describe."""
        name = claims.get(self.oidc.name_claim) or claims.get("sub")
        if not isinstance(name, str) or not name:
            raise OidcRefused(f"the ID token has no {self.oidc.name_claim} or sub claim")
        found: list[Role] = []
        if self.oidc.groups_claim:
            groups = claims.get(self.oidc.groups_claim) or []
            if isinstance(groups, str):
                groups = [groups]
            found += [
                self.oidc.role_map[g]
                for g in groups
                if isinstance(g, str) and g in self.oidc.role_map
            ]
        if self.oidc.role_claim:
            value = claims.get(self.oidc.role_claim)
            if isinstance(value, str) and value in self.oidc.role_map:
                found.append(self.oidc.role_map[value])
            elif isinstance(value, str) and value in ROLES:
                found.append(role_name(value))
        if found:
            return Principal(name, max(found, key=ROLES.index))
        if self.oidc.default_role is not None:
            return Principal(name, self.oidc.default_role)
        raise OidcRefused(f"{name} has no group or role claim that maps to a dashboard role")

    async def _id_token_claims(self, request: Request, code: str, flow: Flow) -> dict[str, Any]:
        metadata = await self._discover()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self._redirect_uri(request),
            "client_id": self.oidc.client_id,
            "code_verifier": flow.verifier,
        }
        headers = {}
        if self.oidc.client_secret is not None:  # client_secret_basic
            secret = self.oidc.client_secret.reveal()
            pair = f"{quote(self.oidc.client_id, safe='')}:{quote(secret, safe='')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        async with self._http() as client:
            try:
                reply = await client.post(
                    str(metadata["token_endpoint"]), data=form, headers=headers
                )
            except httpx.HTTPError as exc:
                raise OidcRefused(
                    f"the token endpoint could not be reached ({type(exc).__name__})"
                ) from None
        if reply.status_code != 200:
            raise OidcRefused(f"the token endpoint answered {reply.status_code}")
        try:
            id_token = str(reply.json()["id_token"])
        except (ValueError, KeyError, TypeError):
            raise OidcRefused("the token endpoint sent no id_token") from None
        return await self.verify(id_token, nonce=flow.nonce, now=_now(request))

    async def verify(self, id_token: str, *, nonce: str, now: float) -> dict[str, Any]:
        """The ID token's claims, once signature, issuer, audience, expiry and nonce hold."""
        try:
            token = jwt.decode(id_token, await self._key_set(id_token), algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise OidcRefused(
                f"the ID token's signature does not verify ({type(exc).__name__})"
            ) from None
        registry = JWTClaimsRegistry(
            now=int(now),
            leeway=60,
            iss={"essential": True, "value": self.oidc.issuer},
            aud={"essential": True, "value": self.oidc.client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(token.claims)
        except JoseError as exc:
            raise OidcRefused(
                f"the ID token is not valid here: {exc.error} {exc.description or ''}".strip()
            ) from None
        return dict(token.claims)

    async def _discover(self) -> dict[str, Any]:
        if self._metadata and self._metadata[0] > time.monotonic():
            return self._metadata[1]
        url = self.oidc.issuer + "/.well-known/openid-configuration"
        metadata = await self._get_json(url, "discovery")
        if str(metadata.get("issuer", "")).rstrip("/") != self.oidc.issuer:
            raise OidcRefused(
                f"discovery names issuer {metadata.get('issuer')!r}, not {self.oidc.issuer!r}"
            )
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(metadata.get(field), str):
                raise OidcRefused(f"discovery has no {field}")
        self._metadata = (time.monotonic() + CACHE_S, metadata)
        return metadata

    async def _key_set(self, id_token: str) -> KeySet:
        kid = _kid(id_token)
        cached = self._keys
        if cached and cached[0] > time.monotonic() and (kid is None or _has_kid(cached[1], kid)):
            return cached[1]
        metadata = await self._discover()  # a new kid: the provider rotated its keys
        keys = KeySet.import_key_set(await self._get_json(str(metadata["jwks_uri"]), "JWKS"))  # type: ignore[arg-type]
        self._keys = (time.monotonic() + CACHE_S, keys)
        return keys

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        async with self._http() as client:
            try:
                reply = await client.get(url)
                reply.raise_for_status()
                data = reply.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise OidcRefused(
                    f"the provider's {what} at {url} failed ({type(exc).__name__})"
                ) from None
        if not isinstance(data, dict):
            raise OidcRefused(f"the provider's {what} is not a JSON object")
        return data

    def _http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=10.0)

    def _redirect_uri(self, request: Request) -> str:
        return str(request.base_url).rstrip("/") + _root(request) + "/login/oidc/callback"

    def _flow(self, request: Request) -> Flow | None:
        value = request.cookies.get(FLOW_COOKIE) or ""
        payload, _, signature = value.rpartition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            flow = Flow(
                str(data["s"]), str(data["n"]), str(data["v"]), str(data["t"]), float(data["e"])
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        return flow if flow.expires_at > _now(request) else None

    def _encode(self, flow: Flow) -> str:
        data = {
            "s": flow.state,
            "n": flow.nonce,
            "v": flow.verifier,
            "t": flow.target,
            "e": flow.expires_at,
        }
        payload = (
            base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
            .decode()
            .rstrip("=")
        )
        return f"{payload}.{self._sign(payload)}"

    def _sign(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _kid(id_token: str) -> str | None:
    try:
        header = json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))
    except (ValueError, binascii.Error, IndexError):
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)


def _now(request: Request) -> float:
    runtime: Runtime = request.state.runtime
    return runtime.clock.now().timestamp()


def _root(request: Request) -> str:
    root: str = request.scope.get("root_path", "")
    return root
