"""uvicorn's own records (an unhandled exception's traceback) come out in the hub's log
format and masked, as `serve` runs it: one JSON object a line in json mode."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.cli import uvicorn_options
from hub.logging import configure_logging
from tests.servers import free_port
from tests.support import wait_until

SECRET = "sk-live-0123456789abcdef"


async def explode(request: Request) -> Response:
    raise RuntimeError(f"the handler failed while holding {SECRET}")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_an_unhandled_exception_is_one_masked_json_record(
    capfd: pytest.CaptureFixture[str], restored_logging: None
) -> None:
    # given the hub's json logging and uvicorn started with the options `serve` uses
    configure_logging("info", [SECRET], "json")
    options = {k: v for k, v in uvicorn_options().items() if k not in ("loop", "http")}
    port = free_port()
    app = Starlette(routes=[Route("/boom", explode)])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 10, "uvicorn started")
        # when a request makes the app raise
        answer = httpx.get(f"http://127.0.0.1:{port}/boom", timeout=5)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    err = capfd.readouterr().err
    # then every line uvicorn wrote is a JSON record, the traceback inside one of them
    lines = [line for line in err.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert answer.status_code == 500
    [failure] = [r for r in records if "Exception in ASGI application" in r["message"]]
    assert failure["logger"] == "uvicorn.error"
    assert failure["level"] == "error"
    assert "RuntimeError" in failure["exception"]
    # and the secret the exception carried is masked
    assert SECRET not in err
