"""`switchboard gcal auth`: the installed-app OAuth flow against a fake Google token
endpoint, with the browser's redirect to the loopback server simulated by an HTTP GET."""

from __future__ import annotations

import base64
import hashlib
import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hub.cli import main
from tests.servers import serve_in_thread
from tests.support import wait_until

CLIENT_ID = "123-desktop.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-not-a-real-secret"
REFRESH = "1//0g-refresh-token-not-real"
AUTH_URL = "https://accounts.test/o/oauth2/v2/auth"


class FakeTokenEndpoint:
    """Google's token endpoint: the code it issued, with the verifier of the challenge."""

    def __init__(self) -> None:
        self.code = "4/0A-code-not-real"
        self.challenge = ""
        self.redirect_uri = ""
        self.forms: list[dict[str, str]] = []

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/token", self.token, methods=["POST"])])

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        self.forms.append(form)
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if (
            form.get("grant_type") != "authorization_code"
            or form.get("code") != self.code
            or base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != self.challenge
            or form.get("redirect_uri") != self.redirect_uri
        ):
            return JSONResponse({"error": "invalid_grant", "error_description": "Bad"}, 400)
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID, CLIENT_SECRET):
            return JSONResponse({"error": "invalid_client"}, 401)
        return JSONResponse(
            {
                "access_token": "ya29.not-real",
                "expires_in": 3599,
                "refresh_token": REFRESH,
                "scope": "https://www.googleapis.com/auth/calendar.events",
                "token_type": "Bearer",
            }
        )


def run_auth(
    capsys: pytest.CaptureFixture[str],
    token_url: str,
    browser: FakeTokenEndpoint,
    *,
    answer: dict[str, str] | None = None,
    state: str | None = None,
    code: str | None = None,
) -> tuple[int, str, str, httpx.Response]:
    """Run the command in a thread, and act as the browser once the URL is printed."""
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(
            main(
                [
                    "gcal",
                    "auth",
                    "--client-id",
                    CLIENT_ID,
                    "--no-browser",
                    "--timeout",
                    "10",
                    "--auth-url",
                    AUTH_URL,
                    "--token-url",
                    token_url,
                ]
            )
        )
    )
    thread.start()
    out: list[str] = []

    def printed_url() -> bool:
        out.append(capsys.readouterr().out)
        return AUTH_URL in "".join(out)

    wait_until(printed_url, 10, "the authorization URL was printed")
    url = next(w for w in "".join(out).split() if w.startswith(AUTH_URL))
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    browser.challenge = query["code_challenge"]
    browser.redirect_uri = query["redirect_uri"]
    # Google redirects the browser to the loopback address with the code and the state.
    redirect = httpx.get(
        query["redirect_uri"],
        params=answer or {"code": code or browser.code, "state": state or query["state"]},
    )
    thread.join(timeout=15)
    captured = capsys.readouterr()
    return result[0], "".join(out) + captured.out, captured.err, redirect


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GOOGLE_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.chdir(tmp_path)  # no switchboard.yaml needed


@pytest.mark.usefixtures("env")
def test_auth_prints_the_refresh_token_granted_for_the_loopback_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = FakeTokenEndpoint()
    with serve_in_thread(fake.app()) as base:
        code, out, err, redirect = run_auth(capsys, f"{base}/token", fake)
    assert (code, err) == (0, "")
    assert f"refresh token: {REFRESH}" in out
    assert redirect.status_code == 200
    assert "got the authorization" in redirect.text
    # The authorization URL asks for offline access with a PKCE S256 challenge, and the
    # redirect goes to 127.0.0.1 on a port the OS picked.
    url = next(w for w in out.split() if w.startswith(AUTH_URL))
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["code_challenge_method"] == "S256"
    assert query["access_type"] == "offline"
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert urlsplit(query["redirect_uri"]).hostname == "127.0.0.1"
    assert CLIENT_SECRET not in url
    assert len(fake.forms) == 1


@pytest.mark.usefixtures("env")
def test_a_redirect_with_another_state_is_refused_without_exchanging(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = FakeTokenEndpoint()
    with serve_in_thread(fake.app()) as base:
        code, out, err, _ = run_auth(capsys, f"{base}/token", fake, state="forged")
    assert code == 2
    assert "another state" in err
    assert fake.forms == []
    assert REFRESH not in out


@pytest.mark.usefixtures("env")
def test_denied_consent_and_a_refused_code_say_what_to_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake = FakeTokenEndpoint()
    with serve_in_thread(fake.app()) as base:
        code, _, err, redirect = run_auth(
            capsys, f"{base}/token", fake, answer={"error": "access_denied"}
        )
        assert (code, redirect.status_code) == (2, 200)
        assert "access_denied" in err
        # A code the token endpoint did not issue (or one already used)
        code, _, err, _ = run_auth(capsys, f"{base}/token", fake, code="4/0A-stale")
    assert code == 2
    assert err.strip() == (
        "switchboard: the token endpoint refused the code (invalid_grant); "
        "the code expired or was used: run the command again"
    )
    assert CLIENT_SECRET not in err


def test_auth_without_a_client_secret_says_which_variable_to_set(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GOOGLE_CLIENT_SECRET", raising=False)
    assert main(["gcal", "auth", "--client-id", CLIENT_ID]) == 2
    assert capsys.readouterr().err == (
        "switchboard: set GOOGLE_CLIENT_SECRET to the OAuth client's secret\n"
    )
