"""`switchboard gcal auth`: Google's OAuth flow for installed apps, once, by a person.

Docs: https://developers.google.com/identity/protocols/oauth2/native-app — a "Desktop app"
OAuth client; the browser is sent to the authorization endpoint with a PKCE challenge
(S256, RFC 7636) and a loopback redirect `http://127.0.0.1:<random port>` (RFC 8252 §7.3:
Google accepts any port for loopback redirects); the code that comes back is exchanged at
the token endpoint with the verifier for a refresh token, which the hub then uses
(connectors/_google.py, for the gcal source and connector alike) without a person.

The refresh token is printed for the person to store as a secret; it is never logged and
never part of an error message.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from hub.errors import UsageError

AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
#: Read and write events: the gcal source reads, the gcal connector creates invites.
SCOPES = ("https://www.googleapis.com/auth/calendar.events",)

_ANSWER = (
    "<!doctype html><meta charset=utf-8><title>Switchboard</title>"
    "<p>{text}</p><p>You can close this tab and go back to the terminal.</p>"
)


@dataclass(frozen=True, slots=True)
class Consent:
    """One attempt: what goes into the authorization URL, and what must come back."""

    redirect_uri: str
    state: str
    verifier: str

    @property
    def challenge(self) -> str:
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def url(
        self, client_id: str, *, auth_url: str = AUTH_URL, scopes: Sequence[str] = SCOPES
    ) -> str:
        query = {
            "client_id": client_id,
            "redirect_uri": self.redirect_uri,
            "response_type": "code",
            "scope": " ".join(scopes),
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
            "state": self.state,
            # A refresh token, and a new one even if this client was granted before.
            "access_type": "offline",
            "prompt": "consent",
        }
        return f"{auth_url}?{urlencode(query)}"


class LoopbackReceiver:
    """A one-shot HTTP server on 127.0.0.1 (random port) that waits for Google's redirect."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._query: dict[str, list[str]] = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                if "code" not in query and "error" not in query:  # /favicon.ico and the like
                    self.send_error(404)
                    return
                ok = "code" in query
                text = "Switchboard got the authorization." if ok else "Access was not granted."
                body = _ANSWER.format(text=text).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                receiver._query = query
                receiver._done.set()

            def log_message(self, format: str, *args: Any) -> None:  # the URL holds the code
                return

        self._server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LoopbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait(self, timeout_s: float) -> dict[str, str]:
        """The redirect's query (`code` and `state`, or `error`); UsageError on timeout."""
        if not self._done.wait(timeout_s):
            raise UsageError(
                f"no answer from the browser within {timeout_s:.0f} s; run the command again "
                "and open the URL on this machine (the redirect goes to 127.0.0.1)"
            )
        return {k: v[0] for k, v in self._query.items() if v}


def exchange_code(
    http: httpx.Client,
    *,
    token_url: str,
    client_id: str,
    client_secret: str,
    code: str,
    consent: Consent,
) -> str:
    """The refresh token Google grants for `code`; UsageError saying why when it does not."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": consent.verifier,
        "redirect_uri": consent.redirect_uri,
        "client_id": client_id,
        "client_secret": client_secret,
    }
    try:
        response = http.post(token_url, data=form)
    except httpx.HTTPError as exc:
        raise UsageError(
            f"could not reach the token endpoint {token_url}: {type(exc).__name__}"
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    token = body.get("refresh_token")
    if response.is_success and isinstance(token, str) and token:
        return token
    if response.is_success:
        raise UsageError(
            "Google granted no refresh token; revoke Switchboard's access at "
            "https://myaccount.google.com/permissions and run the command again"
        )
    code_name = str(body.get("error") or f"HTTP {response.status_code}")
    hint = (
        "; check --client-id and the client secret (a Desktop app client)"
        if code_name in ("invalid_client", "unauthorized_client")
        else "; the code expired or was used: run the command again"
        if code_name == "invalid_grant"
        else ""
    )
    raise UsageError(f"the token endpoint refused the code ({code_name}){hint}")


def run_consent(
    http: httpx.Client,
    *,
    client_id: str,
    client_secret: str,
    show: Callable[[str], None],
    timeout_s: float,
    auth_url: str = AUTH_URL,
    token_url: str = TOKEN_URL,
) -> str:
    """The whole flow: show the URL, wait for the redirect, exchange the code."""
    with LoopbackReceiver() as receiver:
        consent = Consent(
            redirect_uri=receiver.redirect_uri,
            state=secrets.token_urlsafe(24),
            verifier=secrets.token_urlsafe(64),  # 86 characters, within PKCE's 43..128
        )
        show(consent.url(client_id, auth_url=auth_url))
        answer = receiver.wait(timeout_s)
    if "error" in answer:
        raise UsageError(f"Google answered {answer['error']}: access was not granted")
    if not secrets.compare_digest(answer.get("state", ""), consent.state):
        raise UsageError("the redirect carried another state (not this attempt); run again")
    return exchange_code(
        http,
        token_url=token_url,
        client_id=client_id,
        client_secret=client_secret,
        code=answer["code"],
        consent=consent,
    )
