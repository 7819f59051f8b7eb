"""`switchboard serve` runs uvicorn on uvloop + httptools, and says so when it starts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import uvicorn
import uvloop
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hub.cli import uvicorn_options
from tests.support import GITHUB_SECRET, free_port, wait_healthy, write_config


def _loaded(options: dict[str, object]) -> uvicorn.Config:
    config = uvicorn.Config(Starlette(), host="127.0.0.1", port=0, **options)  # type: ignore[arg-type]
    config.load()
    return config


def test_serve_gives_uvicorn_uvloop_and_httptools() -> None:
    config = _loaded(uvicorn_options())
    assert config.http_protocol_class is HttpToolsProtocol
    assert config.get_loop_factory() is uvloop.new_event_loop
    assert config.access_log is False


def test_without_uvloop_serve_falls_back_to_asyncio_and_h11(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on a platform without its wheel
    options = uvicorn_options()
    assert (options["loop"], options["http"]) == ("asyncio", "h11")
    assert _loaded(options).http_protocol_class is H11Protocol


@pytest.mark.slow
def test_serve_names_its_loop_and_http_parser_when_it_starts(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "SWITCHBOARD_SECRET_GITHUB": GITHUB_SECRET}
    serve = ["-c", str(config), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub", *serve],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}", "switchboard serve")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = log.read_text(errors="replace")
    assert f"listening on http://127.0.0.1:{port}" in text, text
    assert "uvloop + httptools)" in text, text
    assert "Traceback" not in text, text
