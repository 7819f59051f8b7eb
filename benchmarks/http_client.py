"""Client CPU per outbound POST: httpx, httpx on the aiohttp transport, aiohttp, make_client.

Why: every delivery is one POST, and at the hub's goal (<= 0.6 ms of worker CPU per event)
the HTTP client alone can spend most of the budget. This measures what each client costs
the process that sends, so the hot path's client is chosen by a number, not a reputation.

How: a sink (a bare ASGI app that reads the body and answers 200 with a small JSON body)
runs under uvicorn in its own process on 127.0.0.1, so its CPU is not counted. In this
process each client sends `--warmup` POSTs (connections opened, caches filled), then `-n`
POSTs of a ~400-byte JSON body, sequentially (concurrency 1) and with 32 in flight, and
the process CPU time (user + system, `time.process_time`) spent is divided by `-n`. Each
figure is the median of `--rounds` rounds; the ratio is to aiohttp at the same concurrency
in the same run.

Clients:
  httpx          httpx.AsyncClient with its default transport (httpcore)
  httpx+aiohttp  httpx.AsyncClient(transport=httpx_aiohttp.AiohttpTransport(...))
  aiohttp        aiohttp.ClientSession
  make_client    hub.pipeline.http.make_client() exactly as the worker builds it (the
                 lean client: httpx's API, plain requests straight on aiohttp)
  make_client/json  the same, sending as connectors do (`json=` and `params=`)

Usage:
  .venv/bin/python benchmarks/http_client.py [-n 3000] [--rounds 3] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BODY = b'{"content": "' + b"x" * 400 + b'"}'
HEADERS = {"content-type": "application/json"}
BODY_JSON = {"content": "x" * 400, "allowed_mentions": {"parse": []}}
PARAMS = {"wait": "true"}
REPLY = b'{"id": "1234567890", "type": 0}'
CLIENTS = ("httpx", "httpx+aiohttp", "aiohttp", "make_client", "make_client/json")
ROOT = Path(__file__).resolve().parent.parent


async def sink(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the whole request body, answer 200 with a small JSON body (like a provider)."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": REPLY})


def serve_sink(port: int) -> None:
    import uvicorn

    loop, http = "asyncio", "h11"
    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401

        loop, http = "uvloop", "httptools"
    except ImportError:
        pass
    uvicorn.run(
        sink, host="127.0.0.1", port=port, loop=loop, http=http, log_level="warning",
        access_log=False, lifespan="off", backlog=256,
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the sink exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # noqa: TID251 - the driver waits for the sink in real time
    sys.exit(f"the sink did not listen on 127.0.0.1:{port} within {timeout_s:g}s")


Post = Callable[[], Awaitable[None]]


@dataclass
class Result:
    cpu_us: float
    per_s: float


def opener(kind: str, url: str, limit: int) -> Callable[[], AbstractAsyncContextManager[Post]]:
    """An async context manager factory yielding `post()`: one POST, body read, 200 checked."""
    import contextlib

    @contextlib.asynccontextmanager
    async def httpx_client() -> Any:
        import httpx

        limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
        transport: httpx.AsyncBaseTransport | None = None
        if kind == "httpx+aiohttp":
            from httpx_aiohttp import AiohttpTransport

            transport = AiohttpTransport(limits=limits)
        if kind.startswith("make_client"):
            from hub.pipeline.http import make_client

            client = make_client()
        else:
            client = httpx.AsyncClient(limits=limits, transport=transport)
        async with client:

            async def post() -> None:
                if kind == "make_client/json":  # as connectors send: a JSON body to encode
                    response = await client.post(url, json=BODY_JSON, params=PARAMS)
                else:
                    response = await client.post(url, content=BODY, headers=HEADERS)
                if response.status_code != 200:
                    raise RuntimeError(f"sink answered {response.status_code}")

            yield post

    @contextlib.asynccontextmanager
    async def aiohttp_client() -> Any:
        import aiohttp

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit)) as s:

            async def post() -> None:
                async with s.post(url, data=BODY, headers=HEADERS) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"sink answered {response.status}")

            yield post

    return aiohttp_client if kind == "aiohttp" else httpx_client


async def measure(kind: str, url: str, n: int, concurrency: int, warmup: int) -> Result:
    async with opener(kind, url, max(concurrency, 1))() as post:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate:
                await post()

        await asyncio.gather(*(one() for _ in range(warmup)))
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return Result(cpu_us=cpu / n * 1e6, per_s=n / wall)


def run(kind: str, url: str, args: argparse.Namespace, concurrency: int) -> Result:
    rounds = []
    for _ in range(args.rounds):
        if args.uvloop:
            import uvloop

            rounds.append(uvloop.run(measure(kind, url, args.n, concurrency, args.warmup)))
        else:
            rounds.append(asyncio.run(measure(kind, url, args.n, concurrency, args.warmup)))
    return Result(
        cpu_us=statistics.median(r.cpu_us for r in rounds),
        per_s=statistics.median(r.per_s for r in rounds),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000, help="measured POSTs per figure")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1, help="the median of this many")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    parser.add_argument("--uvloop", action="store_true", help="run the clients on uvloop")
    parser.add_argument("--serve-sink", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sink:
        serve_sink(args.serve_sink)
        return
    if not 0 < args.n <= 100_000:
        sys.exit("-n must be between 1 and 100000")
    sys.path.insert(0, str(ROOT))
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve-sink", str(port)], env=os.environ.copy()
    )
    try:
        wait_listening(port, proc)
        url = f"http://127.0.0.1:{port}/api/webhooks/1/token"
        loop = "uvloop" if args.uvloop else "asyncio"
        print(f"client CPU per POST, n={args.n}, rounds={args.rounds} (median), loop={loop}")
        results: dict[tuple[str, int], Result] = {}
        for concurrency in args.concurrency:
            for kind in args.clients:
                results[kind, concurrency] = run(kind, url, args, concurrency)
        print(f"{'client':14s} {'conc':>4s} {'CPU us/POST':>12s} {'x aiohttp':>10s} {'POST/s':>8s}")
        for concurrency in args.concurrency:
            base = results.get(("aiohttp", concurrency))
            for kind in args.clients:
                r = results[kind, concurrency]
                ratio = f"{r.cpu_us / base.cpu_us:9.2f}x" if base else f"{'-':>10s}"
                print(f"{kind:14s} {concurrency:4d} {r.cpu_us:12.0f} {ratio} {r.per_s:8.0f}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
