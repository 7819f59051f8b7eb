"""`create_app` is the only way to build the ASGI app; routes are listed here, in one place."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from hub.admin.routes import admin_routes
from hub.api.intake import receive_task_list
from hub.auth.audit import record_configured_roles
from hub.auth.proxies import TrustedProxies
from hub.errors import RequestRejected, StoreError
from hub.ingress.commit import GroupCommitWriter
from hub.ingress.fast import HookFastPath
from hub.ingress.receive import receive_hook, rejected, store_unavailable
from hub.observe.metrics import HubMetrics
from hub.pipeline.worker import WorkerService
from hub.runtime import Runtime
from hub.schedule.scheduler import Scheduler, SchedulerService, scheduler_name
from hub.schedule.upkeep import run_upkeep


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.state.runtime
    try:
        await asyncio.to_thread(runtime.store.count_events, "received")
    except StoreError as exc:
        return JSONResponse({"status": "unavailable", "store": str(exc)}, status_code=503)
    return JSONResponse({"status": "ready"})


async def home(request: Request) -> Response:
    """`/` is what `make run` prints: send people to the dashboard, or say how to get one."""
    runtime: Runtime = request.state.runtime
    if runtime.settings.admin is not None:
        return RedirectResponse("/admin/", status_code=307)
    return JSONResponse(
        {
            "status": "ok",
            "message": "no dashboard: add an admin: section to switchboard.yaml (docs/admin.md)",
        }
    )


def _embedded_scheduler(runtime: Runtime) -> SchedulerService:
    """The hub with its own worker also fires `schedule:` rules (store claims: once)."""
    return SchedulerService(
        Scheduler(
            runtime.store, runtime.queue, runtime.rules, runtime.clock, name=scheduler_name()
        ),
        upkeep=lambda: run_upkeep(runtime),
    )


def create_app(
    runtime: Runtime,
    *,
    run_worker: bool,
    worker_transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """Build the hub; with `run_worker` the in-process worker starts with the app."""
    metrics = HubMetrics(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        # The audit trail notes every role the config file added, changed or removed.
        await asyncio.to_thread(record_configured_roles, runtime)
        writer = GroupCommitWriter(
            runtime.store,
            runtime.queue,
            in_thread=runtime.settings.server.group_commit == "thread",
        )
        await writer.start()
        worker = WorkerService(runtime, transport=worker_transport) if run_worker else None
        if worker is not None:
            await asyncio.to_thread(worker.start)
        scheduler = _embedded_scheduler(runtime) if run_worker else None
        if scheduler is not None:
            scheduler.start()
        try:
            yield {"runtime": runtime, "writer": writer, "worker": worker, "metrics": metrics}
        finally:
            if scheduler is not None:
                await asyncio.to_thread(scheduler.stop)
            await writer.stop()
            if worker is not None:
                await asyncio.to_thread(worker.stop)

    return Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            Route("/hooks/{source}", receive_hook, methods=["POST"]),
            Route("/hooks/{source}/{path:path}", receive_hook, methods=["POST"]),
            Route("/intake/{name}", receive_task_list, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics.endpoint, methods=["GET"]),
            *admin_routes(runtime),
        ],
        exception_handlers={RequestRejected: rejected, StoreError: store_unavailable},
        lifespan=lifespan,
        middleware=[
            # Only with proxies configured: otherwise the peer is the client and no layer runs.
            *(
                [Middleware(TrustedProxies, trusted=runtime.settings.server.trusted_proxies)]
                if runtime.settings.server.trusted_proxies
                else []
            ),
            # POST /hooks/{source} answered without the router (hub/ingress/fast.py); the
            # routes above still serve /hooks/{source}/{path} and whatever it passes on.
            Middleware(HookFastPath, runtime=runtime),
        ],
    )
