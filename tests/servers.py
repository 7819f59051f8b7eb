"""Serve an ASGI app with real uvicorn on 127.0.0.1 in a background thread."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from tests.support import free_port, wait_until


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp, *, port: int | None = None) -> Iterator[str]:
    """Serve until the block ends; pass `port` to come back on the same address later."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 10, f"fake server on port {port} started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
