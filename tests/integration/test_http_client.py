"""make_client's production client (the lean client on aiohttp) against real sockets.

Connectors classify failures on httpx's exception classes (TimeoutException: "no answer in
time", other TransportErrors: "could not reach"), read Retry-After from the response, and
the webhook connector pins the checked address while keeping Host and the TLS name. These
tests hold the aiohttp transport to each of those, with uvicorn (or, for answers no HTTP
server gives, a raw asyncio socket) as the other end. The lean client sends plain requests
(json, content, params, headers) on aiohttp directly: its answers are compared with
httpx's own path, request for request.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import shutil
import subprocess
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from hub.pipeline.http import USER_AGENT, make_client
from hub.pipeline.lean import LeanClient
from hub.pipeline.transport import AiohttpTransport
from tests.support import free_port, wait_until

PINNED_NAME = "hooks.example.test"

#: Set at the end of each test so a handler left waiting returns and uvicorn can stop.
_release = threading.Event()


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "body": await request.json(),
            "host": request.headers["host"],
            "user_agent": request.headers["user-agent"],
        }
    )


async def _limited(request: Request) -> JSONResponse:
    return JSONResponse({"message": "slow down"}, status_code=429, headers={"Retry-After": "7"})


async def _silent(request: Request) -> Response:
    await anyio.to_thread.run_sync(_release.wait, 30)
    return Response(status_code=204)


async def _chunks(request: Request) -> StreamingResponse:
    async def parts() -> Any:
        for i in range(5):
            yield f"part-{i};".encode()

    return StreamingResponse(parts(), media_type="text/plain")


async def _mirror(request: Request) -> Response:
    """Everything the server saw, with a status, headers and encoding the query asks for."""
    seen = {
        "method": request.method,
        "path": request.url.path,
        "query": sorted(request.query_params.multi_items()),
        "content_type": request.headers.get("content-type"),
        "user_agent": request.headers.get("user-agent"),
        "x_custom": request.headers.getlist("x-custom"),
        "body": (await request.body()).decode(),
    }
    status = int(request.query_params.get("status", "200"))
    body = JSONResponse(seen).body
    headers = {"X-Ratelimit-Remaining": "0", "Retry-After": "3"}
    if request.query_params.get("gzip"):
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    return Response(body, status_code=status, headers=headers, media_type="application/json")


async def _moved(request: Request) -> RedirectResponse:
    return RedirectResponse("/landed", status_code=302)


async def _landed(request: Request) -> JSONResponse:
    return JSONResponse({"landed": True})


APP = Starlette(
    routes=[
        Route("/echo", _echo, methods=["POST"]),
        Route("/mirror/{rest:path}", _mirror, methods=["GET", "POST", "PATCH", "DELETE"]),
        Route("/limited", _limited, methods=["POST"]),
        Route("/silent", _silent, methods=["POST"]),
        Route("/chunks", _chunks),
        Route("/moved", _moved),
        Route("/landed", _landed),
    ]
)


@contextlib.contextmanager
def _serve(**tls: str) -> Iterator[int]:
    """uvicorn with APP on 127.0.0.1 in a thread (TLS when given ssl_certfile/keyfile)."""
    port = free_port()
    config = uvicorn.Config(
        APP, host="127.0.0.1", port=port, log_level="warning", access_log=False,
        lifespan="off", **tls,  # type: ignore[arg-type]
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    _release.clear()
    thread.start()
    try:
        wait_until(lambda: server.started, 10, f"uvicorn on port {port} started")
        yield port
    finally:
        _release.set()
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with _serve() as port:
        yield f"http://127.0.0.1:{port}"


def _run(call: Callable[[httpx.AsyncClient], Awaitable[Any]], **kwargs: Any) -> Any:
    async def go() -> Any:
        async with make_client(**kwargs) as client:
            return await call(client)

    return asyncio.run(go())


def test_the_production_client_runs_on_the_aiohttp_transport() -> None:
    client = make_client()
    assert isinstance(client, LeanClient)
    assert isinstance(client._transport, AiohttpTransport)
    asyncio.run(client.aclose())


#: Requests as connectors make them: (method, path, keyword arguments).
PLAIN_CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/mirror/api/webhooks/1/tok", {"json": {"content": "héllo ✓", "n": [1, 2.5]}}),
    ("POST", "/mirror/a", {"json": {"x": 1}, "params": {"wait": True, "thread_id": 42}}),
    ("POST", "/mirror/a?keep=1", {"params": {"more": "two words"}, "json": None}),
    ("POST", "/mirror/b", {"content": b'{"raw": 1}', "headers": {"Content-Type": "text/x"}}),
    ("POST", "/mirror/c", {"json": {}, "headers": {"content-type": "application/vnd+json"}}),
    ("PATCH", "/mirror/d/%C3%A9t%C3%A9", {"json": {"edit": True}, "headers": {"X-Custom": "1"}}),
    ("GET", "/mirror/e", {"params": {"q": "ä&b", "empty": None}}),
    ("DELETE", "/mirror/f", {}),
    ("POST", "/mirror/g", {"json": {}, "headers": {"User-Agent": "theirs/1.0"}}),
    ("POST", "/mirror/h?status=429", {"json": {}}),
    ("POST", "/mirror/i?status=503&gzip=1", {"json": {"zipped": "answer"}}),
    ("GET", "/moved", {}),
]


def _answer(response: httpx.Response) -> dict[str, Any]:
    """What connectors read from a response (the date header aside: it moves)."""
    return {
        "status": response.status_code,
        "reason": response.reason_phrase,
        "success": response.is_success,
        "headers": sorted((k, v) for k, v in response.headers.multi_items() if k != "date"),
        "content": response.content,
        "text": response.text,
        "request": (response.request.method, str(response.request.url)),
        "http_version": response.http_version,
    }


@pytest.mark.parametrize(("method", "path", "kwargs"), PLAIN_CALLS, ids=lambda v: str(v)[:30])
def test_a_plain_request_answers_as_on_httpx_own_path(
    server: str, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        lean = make_client()
        limits = httpx.Limits(max_connections=10)
        plain = httpx.AsyncClient(
            headers={"User-Agent": USER_AGENT}, transport=AiohttpTransport(limits=limits)
        )
        async with lean, plain:
            ours = await lean.request(method, server + path, **kwargs)
            theirs = await plain.request(method, server + path, **kwargs)
        return _answer(ours), _answer(theirs)

    ours, theirs = asyncio.run(both())
    assert ours == theirs
    assert ours["status"] in (200, 302, 429, 503)


def test_a_plain_request_skips_httpx_request_building(
    server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the plain path built an httpx request")

    monkeypatch.setattr(httpx.AsyncClient, "build_request", refuse)
    response = _run(lambda c: c.post(f"{server}/mirror/x", json={"a": 1}, params={"w": 1}))
    assert response.json()["query"] == [["w", "1"]]
    # Anything else (here a per-request timeout) takes httpx's own path.
    with pytest.raises(AssertionError, match="built an httpx request"):
        _run(lambda c: c.post(f"{server}/mirror/x", json={}, timeout=3.0))


def test_the_clients_own_read_timeout_holds_on_the_plain_path(server: str) -> None:
    with pytest.raises(httpx.ReadTimeout):
        _run(lambda c: c.post(f"{server}/silent", json={}), timeout_s=0.2)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:99999/x", httpx.InvalidURL),
        ("ftp://127.0.0.1/x", httpx.UnsupportedProtocol),
        ("discord.com/api/webhooks/1/secret-token-9f", httpx.UnsupportedProtocol),
    ],
)
def test_an_unusable_url_raises_what_httpx_raises(
    url: str, expected: type[httpx.HTTPError]
) -> None:
    async def attempt(client: httpx.AsyncClient) -> BaseException:
        try:
            await client.post(url, json={})
        except Exception as exc:
            return exc
        raise AssertionError("the request succeeded")

    exc = _run(attempt)
    assert isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol))
    assert isinstance(exc, expected) or expected is httpx.InvalidURL
    assert "secret-token-9f" not in str(exc)


def test_a_json_post_comes_back_200_with_the_hub_user_agent(server: str) -> None:
    response = _run(lambda c: c.post(f"{server}/echo", json={"content": "hello", "n": 1}))
    assert response.status_code == 200
    assert response.json() == {
        "body": {"content": "hello", "n": 1},
        "host": server.removeprefix("http://"),
        "user_agent": USER_AGENT,
    }


def test_a_429_reaches_the_caller_with_its_retry_after(server: str) -> None:
    response = _run(lambda c: c.post(f"{server}/limited", json={}))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.json() == {"message": "slow down"}


def test_no_answer_within_the_read_timeout_raises_read_timeout(server: str) -> None:
    with pytest.raises(httpx.ReadTimeout) as caught:
        _run(lambda c: c.post(f"{server}/silent", json={}, timeout=httpx.Timeout(5, read=0.2)))
    assert isinstance(caught.value, httpx.TimeoutException)


def test_a_refused_connection_raises_connect_error_not_a_timeout() -> None:
    # httpx-aiohttp 0.2 alone maps this to ConnectTimeout: "no answer in time", not "down".
    port = free_port()  # nothing listens there
    with pytest.raises(httpx.ConnectError) as caught:
        _run(lambda c: c.post(f"http://127.0.0.1:{port}/", json={}))
    assert not isinstance(caught.value, httpx.TimeoutException)


def test_a_streamed_body_arrives_in_full(server: str) -> None:
    async def read(client: httpx.AsyncClient) -> bytes:
        async with client.stream("GET", f"{server}/chunks") as response:
            return b"".join([chunk async for chunk in response.aiter_bytes()])

    assert _run(read) == b"part-0;part-1;part-2;part-3;part-4;"


def test_redirects_are_not_followed_unless_asked(server: str) -> None:
    response = _run(lambda c: c.get(f"{server}/moved"))
    assert response.status_code == 302
    assert response.headers["location"] == "/landed"
    followed = _run(lambda c: c.get(f"{server}/moved", follow_redirects=True))
    assert followed.status_code == 200
    assert followed.json() == {"landed": True}
    assert [r.status_code for r in followed.history] == [302]


async def _raw_server(reply: bytes) -> tuple[asyncio.Server, int]:
    """A socket that reads one request head, writes `reply` verbatim and hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, int(server.sockets[0].getsockname()[1])


def _raw(reply: bytes, *, path: str = "/hook") -> BaseException:
    async def go() -> BaseException:
        server, port = await _raw_server(reply)
        async with server, make_client() as client:
            try:
                await client.post(
                    f"http://127.0.0.1:{port}{path}",
                    json={},
                    headers={"Authorization": "Bearer tok-not-real-51f2"},
                )
            except Exception as exc:
                return exc
        raise AssertionError("the request succeeded")

    return asyncio.run(go())


def test_a_malformed_response_raises_remote_protocol_error_without_the_request() -> None:
    # httpx-aiohttp 0.2 alone lets aiohttp.ClientResponseError escape, whose text quotes the
    # URL and whose repr quotes the request headers (Authorization here).
    exc = _raw(b"garbage\r\n\r\n", path="/hook/secret-path-7d1e")
    assert isinstance(exc, httpx.RemoteProtocolError)
    shown = "".join(traceback.format_exception(exc)) + repr(exc)  # what a log would show
    assert "tok-not-real-51f2" not in shown
    assert "secret-path-7d1e" not in shown


def test_a_connection_closed_before_the_answer_is_not_a_timeout() -> None:
    exc = _raw(b"")
    assert isinstance(exc, httpx.TransportError)
    assert not isinstance(exc, httpx.TimeoutException)


def test_a_body_cut_short_raises_remote_protocol_error() -> None:
    exc = _raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
    assert isinstance(exc, httpx.RemoteProtocolError)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate valid only for PINNED_NAME (not for 127.0.0.1)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
         "-subj", f"/CN={PINNED_NAME}", "-addext", f"subjectAltName=DNS:{PINNED_NAME}"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_a_pinned_request_keeps_host_and_tls_name(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook connector's shape: the checked address in the URL, the name kept."""
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # read by make_client's SSL context
    with _serve(ssl_certfile=str(cert), ssl_keyfile=str(key)) as port:
        pinned = _run(
            lambda c: c.post(
                f"https://127.0.0.1:{port}/echo",
                json={"pinned": True},
                headers={"Host": f"{PINNED_NAME}:{port}"},
                extensions={"sni_hostname": PINNED_NAME},
            )
        )
        # Without the TLS name the certificate is checked against 127.0.0.1, and refused.
        with pytest.raises(httpx.ConnectError):
            _run(lambda c: c.post(f"https://127.0.0.1:{port}/echo", json={}))
    assert pinned.status_code == 200
    assert pinned.json()["host"] == f"{PINNED_NAME}:{port}"
    assert pinned.json()["body"] == {"pinned": True}


def test_a_transport_passed_in_replaces_the_network() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"seen": request.headers["user-agent"]})

    response = _run(
        lambda c: c.post("https://discord.example/api", json={}),
        transport=httpx.MockTransport(answer),
    )
    assert response.status_code == 201
    assert response.json() == {"seen": USER_AGENT}
