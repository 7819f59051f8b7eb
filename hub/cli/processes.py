"""The long-running commands: `serve`, `worker`, `scheduler`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from hub.cli.common import _settings
from hub.errors import ConfigError
from hub.logging import UVICORN_LOG_CONFIG, configure_logging
from hub.rules.reload import RulesWatcher
from hub.rules.templates import TemplateEngine
from hub.runtime import Runtime, build_runtime, load_rules


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the hub (ingress + in-process worker)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="ingress only; run `switchboard worker` processes separately",
    )
    serve.set_defaults(run=_serve, blocks=True)

    worker = sub.add_parser("worker", help="run a worker process (Redis mode)")
    worker.add_argument("--threads", type=int)
    worker.set_defaults(run=_worker, blocks=True)

    scheduler = sub.add_parser(
        "scheduler",
        help="fire `schedule:` rules (Redis mode; several may run, each tick fires once)",
    )
    scheduler.set_defaults(run=_scheduler, blocks=True)


def _broker_kind(url: str) -> str:
    """`redis` or `rabbitmq`, for start-up lines; never the URL (it may hold a password)."""
    return "rabbitmq" if url.startswith(("amqp://", "amqps://")) else "redis"


def uvicorn_options() -> dict[str, Any]:
    """What `serve` passes to uvicorn.run: uvloop + httptools when importable (the default
    install has both), else asyncio + h11, so a platform without wheels still serves."""
    from hub.auth.proxies import SERVER_OPTIONS

    # SERVER_OPTIONS: the hub, not uvicorn, decides whose X-Forwarded-For to believe.
    options: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "log_config": UVICORN_LOG_CONFIG,
        # A dashboard's live stream (/admin/live) is a request that does not end by itself:
        # on shutdown, wait this long for requests in flight, then cancel what is left.
        "timeout_graceful_shutdown": 5,
        **SERVER_OPTIONS,
    }
    try:
        import httptools  # noqa: F401
        import uvloop  # noqa: F401
    except ImportError:
        return options | {"loop": "asyncio", "http": "h11"}
    return options | {"loop": "uvloop", "http": "httptools"}


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from hub.app import create_app

    settings, plugins = _settings(args)
    configure_logging(args.log_level, settings.secret_values(), args.log_format)
    if args.no_worker and settings.is_embedded:
        raise ConfigError(
            "--no-worker needs a shared broker",
            hint="set SWITCHBOARD_REDIS_URL=redis://127.0.0.1:6379/0 (or broker.url: amqp://...)",
        )
    runtime = build_runtime(settings, plugins)
    app = create_app(runtime, run_worker=not args.no_worker)
    watcher = _watch_rules(runtime)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    options = uvicorn_options()
    print(
        f"switchboard: listening on http://{host}:{port} "
        f"({'embedded' if settings.is_embedded else _broker_kind(settings.broker_url)} broker, "
        f"{'no worker' if args.no_worker else 'in-process worker'}, "
        f"{len(runtime.rules.current.rules)} rules; {options['loop']} + {options['http']})",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.run(app, host=host, port=port, **options)
    finally:
        watcher.stop()
        runtime.close()
    return 0


def _worker(args: argparse.Namespace) -> int:
    from hub.pipeline.worker import WorkerService

    runtime = _shared_broker_runtime(args, "a separate worker needs a shared broker")
    return _run_until_signalled(runtime, WorkerService(runtime, threads=args.threads), "worker")


def _scheduler(args: argparse.Namespace) -> int:
    from hub.schedule.scheduler import Scheduler, SchedulerService, next_ticks, scheduler_name
    from hub.schedule.upkeep import run_upkeep

    runtime = _shared_broker_runtime(
        args, "a separate scheduler needs a shared broker; `switchboard serve` runs one itself"
    )
    service = SchedulerService(
        Scheduler(
            runtime.store, runtime.queue, runtime.rules, runtime.clock, name=scheduler_name()
        ),
        upkeep=lambda: run_upkeep(runtime),
    )

    def ticks() -> list[str]:
        return [
            f"  {rule_id}: next tick {tick.isoformat() if tick else 'never'}"
            for rule_id, tick in next_ticks(runtime.rules, runtime.clock.now())
        ]

    return _run_until_signalled(runtime, service, "scheduler", notes=ticks)


def _shared_broker_runtime(args: argparse.Namespace, refusal: str) -> Runtime:
    """The runtime of a process that only makes sense beside others on a shared broker;
    refused (with `refusal`) in embedded mode."""
    settings, plugins = _settings(args)
    configure_logging(args.log_level, settings.secret_values(), args.log_format)
    if settings.is_embedded:
        raise ConfigError(
            refusal,
            hint="set SWITCHBOARD_REDIS_URL=redis://127.0.0.1:6379/0 (or broker.url: amqp://...)",
        )
    return build_runtime(settings, plugins)


class _Service(Protocol):
    """What `_run_until_signalled` runs: the worker or the scheduler service."""

    def start(self) -> None: ...
    def stop(self) -> None: ...


def _run_until_signalled(
    runtime: Runtime,
    service: _Service,
    what: str,
    *,
    notes: Callable[[], list[str]] = list,
) -> int:
    """Run `service` (with rule hot reload) until SIGINT or SIGTERM, then stop it and close
    the runtime; `notes` are start-up lines printed once it runs."""
    watcher = _watch_rules(runtime)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    service.start()
    print(f"switchboard: {what} {os.getpid()} running", file=sys.stderr, flush=True)
    for line in notes():
        print(line, file=sys.stderr)
    stop.wait()
    service.stop()
    watcher.stop()
    runtime.close()
    return 0


def _watch_rules(runtime: Runtime) -> RulesWatcher:
    """Hot reload on file change and on SIGHUP; the last good rule set keeps routing."""
    templates = TemplateEngine()
    watcher = RulesWatcher(
        runtime.rules,
        runtime.settings.rules_path,
        lambda: load_rules(runtime.settings, runtime.plugins, templates).ruleset,
        now=lambda: runtime.clock.now().timestamp(),
    )
    signal.signal(signal.SIGHUP, lambda *_: watcher.reload_now())
    watcher.start()
    return watcher
