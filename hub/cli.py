"""The `switchboard` command: serve, worker, sign, rules check."""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from hub.config import Settings, load_settings
from hub.errors import ConfigError, PluginError, StoreError, SwitchboardError, UsageError
from hub.logging import UVICORN_LOG_CONFIG, configure_logging
from hub.plugins import Plugins, load_plugins
from hub.rules.reload import RulesWatcher
from hub.rules.templates import TemplateEngine
from hub.runtime import Runtime, build_runtime, load_rules
from hub.tasks.cli import add_intake_command

DEFAULT_CONFIG = "switchboard.yaml"


def _broker_kind(url: str) -> str:
    """`redis` or `rabbitmq`, for start-up lines; never the URL (it may hold a password)."""
    return "rabbitmq" if url.startswith(("amqp://", "amqps://")) else "redis"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input gets one line saying what to do, never a traceback."""
    parser = _parser()
    args = parser.parse_args(argv)  # usage errors: argparse prints usage and exits 2
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        code: int = args.run(args)
    except (ConfigError, PluginError, StoreError) as exc:
        text = str(exc)
        sep = "\n" if "\n" in text else " "  # several errors: one per line, under the header
        print(f"switchboard: error:{sep}{text}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 2
    except SwitchboardError as exc:
        print(f"switchboard: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.filename is None:
            raise
        # A file named on the command line (or in the config) that cannot be read.
        print(f"switchboard: {exc.filename}: {exc.strerror}; check the path", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("switchboard: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line; the traceback only when asked for
        if os.environ.get("SWITCHBOARD_TRACEBACK"):
            raise
        print(
            f"switchboard: unexpected {type(exc).__name__}: {exc} (a bug: please report it; "
            "SWITCHBOARD_TRACEBACK=1 shows where)",
            file=sys.stderr,
        )
        return 1
    return code


def _duration(text: str) -> str:
    """argparse type for durations (30s, 5m, 7d): a typo is a usage error, not a traceback."""
    from connectors.base import parse_duration

    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def existing_path(text: str) -> Path:
    """argparse type for a file or directory the command reads: a typo is a usage error."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file or directory")
    return path


def _header(text: str) -> str:
    """argparse type for -H 'Name: value'."""
    name, colon, _ = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError(f"'{text}' is not a header; write 'Name: value'")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    parser.add_argument(
        "--config",
        "-c",
        default=os.environ.get("SWITCHBOARD_CONFIG", DEFAULT_CONFIG),
        help="path to switchboard.yaml (env SWITCHBOARD_CONFIG)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        default="INFO",
    )
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=os.environ.get("SWITCHBOARD_LOG_FORMAT", "console"),
        help="console for people, json for log shippers (env SWITCHBOARD_LOG_FORMAT)",
    )
    # `blocks=True` marks commands that wait (a server, a browser) once their input is good.
    sub = parser.add_subparsers(title="commands")

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

    sign = sub.add_parser("sign", help="print the signature header a source expects for a file")
    sign.add_argument("source", choices=["github"])
    sign.add_argument("payload", type=existing_path)
    sign.set_defaults(run=_sign)

    rules = sub.add_parser("rules", help="work with rule files")
    rules_sub = rules.add_subparsers(title="rules commands")
    check = rules_sub.add_parser("check", help="validate rule files; exit 1 on any error")
    check.add_argument(
        "path", nargs="?", type=existing_path, help="file or directory (default: config)"
    )
    check.set_defaults(run=_rules_check)
    test = rules_sub.add_parser("test", help="run the `tests:` cases of rule files")
    test.add_argument("path", nargs="?", type=existing_path)
    test.set_defaults(run=_rules_test)

    replay = sub.add_parser("replay", help="send dead (or, with --force, any) deliveries again")
    replay.add_argument("ids", nargs="*", help="delivery ids or event ids")
    replay.add_argument("--dead", action="store_true", help="every dead delivery (see --since)")
    replay.add_argument(
        "--since", default="24h", type=_duration, help="with --dead: how far back (e.g. 1h)"
    )
    replay.add_argument(
        "--force",
        action="store_true",
        help="also re-send delivered ones (duplicates where not idempotent)",
    )
    replay.set_defaults(run=_replay)

    add_intake_command(sub, _settings, existing_path)

    simulate = sub.add_parser("simulate", help="dry run: which rules match, what would be sent")
    simulate.add_argument("event", type=existing_path, help="a normalized event, or a raw payload")
    simulate.add_argument("--source", help="treat the file as a raw payload of this source")
    simulate.add_argument(
        "--header",
        "-H",
        action="append",
        default=[],
        type=_header,
        help="'Name: value' header for a raw payload (repeatable)",
    )
    simulate.set_defaults(run=_simulate)

    prune = sub.add_parser("prune", help="drop old raw payloads and attempt logs (retention)")
    prune.add_argument(
        "--older-than", default="30d", type=_duration, help="age to keep, e.g. 30d (default)"
    )
    prune.add_argument("--batch-size", type=int, default=500, help="rows per transaction")
    prune.set_defaults(run=_prune)

    db = sub.add_parser("db", help="the store's schema (migrations)")
    db_sub = db.add_subparsers(title="db commands")
    db_upgrade = db_sub.add_parser(
        "upgrade", help="migrate the store's schema (every process also does so on start)"
    )
    db_upgrade.add_argument(
        "--revision", default="head", help="revision to migrate to (default: head, the newest)"
    )
    db_upgrade.set_defaults(run=_db_upgrade)
    db_current = db_sub.add_parser(
        "current", help="print the store's schema revision and the newest one"
    )
    db_current.set_defaults(run=_db_current)
    db_backup = db_sub.add_parser(
        "backup",
        help="copy the store into a file while the hub runs (SQLite online backup, pg_dump)",
    )
    db_backup.add_argument("path", type=Path, help="the backup file to write (replaced)")
    db_backup.set_defaults(run=_db_backup)
    db_restore = db_sub.add_parser(
        "restore", help="load a backup into the store (stop the hub first), then migrate it"
    )
    db_restore.add_argument("path", type=existing_path, help="a file from `db backup`")
    db_restore.add_argument(
        "--force", action="store_true", help="replace a store that already holds events"
    )
    db_restore.set_defaults(run=_db_restore)

    secrets = sub.add_parser("secrets", help="encryption of the tokens the hub stores")
    secrets_sub = secrets.add_subparsers(title="secrets commands")
    new_key = secrets_sub.add_parser(
        "new-key", help="print a new key for store.encryption_keys (keep it secret)"
    )
    new_key.set_defaults(run=_secrets_new_key)
    rotate = secrets_sub.add_parser(
        "rotate",
        help="re-encrypt every stored token under the first of store.encryption_keys "
        "(safe while the hub runs)",
    )
    rotate.set_defaults(run=_secrets_rotate)

    admin = sub.add_parser("admin", help="admin dashboard and API helpers")
    admin_sub = admin.add_subparsers(title="admin commands")
    hash_pw = admin_sub.add_parser(
        "hash-password", help="print a scrypt hash for admin.users[].password_hash"
    )
    hash_pw.set_defaults(run=_hash_password)

    discord = sub.add_parser("discord", help="Discord helpers")
    discord_sub = discord.add_subparsers(title="discord commands")
    register = discord_sub.add_parser(
        "register-commands",
        help="replace the application's slash commands with those of a YAML file",
    )
    register.add_argument("--application-id", required=True)
    register.add_argument("--guild", help="register in one server (at once) instead of globally")
    register.add_argument(
        "--file", type=existing_path, default=Path("docs/examples/discord-commands.yaml")
    )
    register.add_argument(
        "--token-env", default="DISCORD_BOT_TOKEN", help="environment variable with the bot token"
    )
    register.add_argument("--api-url", default="https://discord.com/api/v10")
    register.set_defaults(run=_register_commands)

    gcal = sub.add_parser("gcal", help="Google Calendar helpers")
    gcal_sub = gcal.add_subparsers(title="gcal commands")
    watch = gcal_sub.add_parser(
        "watch",
        help="open the push channel of a calendar to this hub (renewed by the hub)",
    )
    watch.add_argument("--calendar", required=True, help="calendar id, e.g. primary")
    watch.add_argument("--address", required=True, help="public URL of /hooks/gcal")
    watch.add_argument(
        "--ttl", default="7d", type=_duration, help="how long the channel lives (max ~7d)"
    )
    watch.set_defaults(run=_gcal_watch)
    stop_cmd = gcal_sub.add_parser("stop", help="stop the push channel of a calendar")
    stop_cmd.add_argument("--calendar", required=True)
    stop_cmd.set_defaults(run=_gcal_stop)
    auth = gcal_sub.add_parser(
        "auth",
        help="grant Switchboard access to a Google account; prints the refresh token to store",
    )
    auth.add_argument(
        "--client-id",
        default=os.environ.get("GOOGLE_CLIENT_ID"),
        help="OAuth client id of a Desktop app client (env GOOGLE_CLIENT_ID)",
    )
    auth.add_argument(
        "--client-secret-env",
        default="GOOGLE_CLIENT_SECRET",
        help="environment variable holding the client secret (kept off the command line)",
    )
    auth.add_argument("--no-browser", action="store_true", help="only print the URL to open")
    auth.add_argument("--timeout", type=int, default=300, help="seconds to wait for the browser")
    auth.add_argument("--auth-url", default="https://accounts.google.com/o/oauth2/v2/auth")
    auth.add_argument("--token-url", default="https://oauth2.googleapis.com/token")
    auth.set_defaults(run=_gcal_auth, blocks=True)
    return parser


def _settings(
    args: argparse.Namespace, *, require_secrets: bool = True
) -> tuple[Settings, Plugins]:
    """The config and plugins; without `require_secrets`, unset secrets are listed on
    stderr as what running the hub would need, not refused (the rules tools' mode)."""
    path = Path(args.config)
    if not path.is_file():
        raise ConfigError(
            f"config file {path} not found",
            hint="copy switchboard.example.yaml to switchboard.yaml or pass --config",
        )
    plugins = load_plugins()
    settings = load_settings(
        path, environ=os.environ, plugins=plugins, require_secrets=require_secrets
    )
    if settings.missing_secrets:
        print(
            "note: secrets not set here (not needed to check rules; needed to run the hub): "
            + ", ".join(settings.missing_secrets),
            file=sys.stderr,
        )
    return settings, plugins


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

    settings, plugins = _settings(args)
    configure_logging(args.log_level, settings.secret_values(), args.log_format)
    if settings.is_embedded:
        raise ConfigError(
            "a separate worker needs a shared broker",
            hint="set SWITCHBOARD_REDIS_URL=redis://127.0.0.1:6379/0 (or broker.url: amqp://...)",
        )
    runtime = build_runtime(settings, plugins)
    service = WorkerService(runtime, threads=args.threads)
    watcher = _watch_rules(runtime)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    service.start()
    print(f"switchboard: worker {os.getpid()} running", file=sys.stderr, flush=True)
    stop.wait()
    service.stop()
    watcher.stop()
    runtime.close()
    return 0


def _scheduler(args: argparse.Namespace) -> int:
    from hub.schedule.scheduler import Scheduler, SchedulerService, next_ticks, scheduler_name
    from hub.schedule.upkeep import run_upkeep

    settings, plugins = _settings(args)
    configure_logging(args.log_level, settings.secret_values(), args.log_format)
    if settings.is_embedded:
        raise ConfigError(
            "a separate scheduler needs a shared broker; `switchboard serve` runs one itself",
            hint="set SWITCHBOARD_REDIS_URL=redis://127.0.0.1:6379/0 (or broker.url: amqp://...)",
        )
    runtime = build_runtime(settings, plugins)
    service = SchedulerService(
        Scheduler(
            runtime.store, runtime.queue, runtime.rules, runtime.clock, name=scheduler_name()
        ),
        upkeep=lambda: run_upkeep(runtime),
    )
    watcher = _watch_rules(runtime)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    service.start()
    print(f"switchboard: scheduler {os.getpid()} running", file=sys.stderr, flush=True)
    for rule_id, tick in next_ticks(runtime.rules, runtime.clock.now()):
        print(f"  {rule_id}: next tick {tick.isoformat() if tick else 'never'}", file=sys.stderr)
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


def _sign(args: argparse.Namespace) -> int:
    settings, _ = _settings(args)
    source = settings.sources.get(args.source)
    if source is None or source.secret is None:
        raise ConfigError(f"source '{args.source}' is not enabled in {args.config}")
    body = args.payload.read_bytes()
    digest = hmac.new(source.secret.reveal().encode(), body, hashlib.sha256).hexdigest()
    print(f"X-Hub-Signature-256: sha256={digest}")
    return 0


def _rules_check(args: argparse.Namespace) -> int:
    settings, plugins = _settings(args, require_secrets=False)
    result = load_rules(settings, plugins, TemplateEngine(), args.path)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(
        f"ok: {len(result.ruleset.rules)} rules in {len(result.ruleset.files)} files"
        + (f", {len(result.warnings)} warnings" if result.warnings else "")
    )
    return 0


def _rules_test(args: argparse.Namespace) -> int:
    from hub.clock import SystemClock
    from hub.rules.testing import run_rule_tests

    settings, plugins = _settings(args, require_secrets=False)
    result = load_rules(settings, plugins, TemplateEngine(), args.path)
    sources = {name: cls() for name, cls in plugins.sources.items()}
    cases = run_rule_tests(
        result.ruleset,
        result.documents,
        sources=sources,
        clock=SystemClock(),
        categories=settings.categories,
    )
    failed = [c for c in cases if not c.passed]
    for case in cases:
        print(f"{'ok  ' if case.passed else 'FAIL'} {case.location}: {case.name}")
        if case.diff:
            print("\n".join("     " + line for line in case.diff.splitlines()))
    print(f"{len(cases) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _replay(args: argparse.Namespace) -> int:
    from connectors.base import parse_duration
    from hub.store import open_store
    from hub.store.replay import dead_since, replay

    settings, _ = _settings(args)
    if not args.ids and not args.dead:
        raise ConfigError("name delivery or event ids, or pass --dead")
    store = open_store(settings.database_url)
    try:
        now = time_now()
        ids = list(args.ids)
        if args.dead:
            ids += dead_since(store, since=now - parse_duration(args.since).total_seconds())
        # Embedded mode has no broker this process can reach: rows are made due "one lease
        # ago", so the running hub's sweeper (every lease/4) sends them.
        lease = settings.worker.lease_seconds
        due_at = now - lease - 1 if settings.is_embedded else now
        result = replay(store, ids, now=now, due_at=due_at, force=args.force)
        if not settings.is_embedded:
            from hub.pipeline.queue import Queue, make_broker

            queue = Queue(make_broker(settings.broker_url, namespace=settings.broker_namespace))
            queue.enqueue_events(result.event_ids)
            queue.enqueue_deliveries(result.delivery_ids)
            queue.close()
    finally:
        store.close()
    print(
        f"replaying {len(result.delivery_ids)} deliveries and {len(result.event_ids)} events"
        + (f" (sent within {lease / 4:.0f}s by the running hub)" if settings.is_embedded else "")
    )
    if result.skipped:
        print(f"left {len(result.skipped)} delivered deliveries alone; --force sends them again")
    return 0


def time_now() -> float:
    from hub.clock import SystemClock

    return SystemClock().now().timestamp()


def _simulate(args: argparse.Namespace) -> int:
    import json

    from hub.clock import SystemClock
    from hub.rules.testing import dry_run, normalize_payload

    settings, plugins = _settings(args, require_secrets=False)
    ruleset = load_rules(settings, plugins, TemplateEngine()).ruleset
    body = args.event.read_bytes()
    if args.source:
        source_cls = plugins.sources.get(args.source)
        if source_cls is None:
            raise ConfigError(
                f"unknown source '{args.source}'",
                hint=f"installed: {', '.join(sorted(plugins.sources))}",
            )
        headers = dict(h.split(":", 1) for h in args.header)
        try:
            events = normalize_payload(
                source_cls(),
                body,
                {k.strip(): v.strip() for k, v in headers.items()},
                SystemClock(),
            )
        except Exception as exc:  # the normalizer's complaint is the answer to a dry run
            hint = "; pass the provider's headers with -H 'Name: value'"
            raise UsageError(
                f"the {args.source} source could not read {args.event}: {_reason(exc)}"
                + (hint if isinstance(exc, KeyError) else "")
            ) from exc
    else:
        event = _normalized_event(body, args.event, sorted(plugins.sources))
        if event is None:
            return 2
        events = [event]
    for event in events:
        shown = {**event, "data": {**event.get("data", {}), "raw": "…"}}
        print("event:", json.dumps(shown, indent=2, ensure_ascii=False))
        for verdict in dry_run(ruleset, event, categories=settings.categories):
            if verdict.matched:
                print(f"MATCH {verdict.rule_id}")
                for action in verdict.actions:
                    print("   would send:", json.dumps(action, ensure_ascii=False))
            else:
                print(f"  no  {verdict.rule_id}: {verdict.reason}")
    print("(dry run: nothing was sent)")
    return 0


def _reason(exc: Exception) -> str:
    """One line for a normalizer's exception; a KeyError is usually a missing header."""
    if isinstance(exc, KeyError) and str(exc.args[0]).lower().startswith("x-"):
        return f"header {exc.args[0]} is missing"
    return f"{type(exc).__name__}: {exc}"


def _normalized_event(body: bytes, path: Path, sources: list[str]) -> dict[str, Any] | None:
    """The file as a normalized event, or None after saying why it is not one (exit 2).

    A raw webhook body read as an event matches nothing and prints hundreds of lines; the
    dashboard refuses it the same way.
    """
    import json

    try:
        event = json.loads(body)
    except ValueError as exc:
        print(f"switchboard: {path}: not JSON: {exc}", file=sys.stderr)
        return None
    # A raw body can carry a `type` of its own (Notion's `page.created`, Discord's 1):
    # a normalized event also names its `source` (CloudEvents).
    if isinstance(event, dict) and isinstance(event.get("type"), str) and "source" in event:
        return event
    print(
        f"switchboard: {path}: without --source, payload must be a normalized event "
        "(an object with 'type' and 'source')\n"
        f"  for a raw webhook body, name its source and headers: "
        f"switchboard simulate {path} --source SOURCE -H 'Name: value'\n"
        f"  e.g. --source github -H 'X-GitHub-Event: issues'; "
        f"installed sources: {', '.join(sources) or 'none'}",
        file=sys.stderr,
    )
    return None


def _prune(args: argparse.Namespace) -> int:
    from connectors.base import parse_duration
    from hub.store import open_store
    from hub.store.retention import prune

    settings, _ = _settings(args)
    try:
        keep_s = parse_duration(args.older_than).total_seconds()
    except ValueError as exc:
        raise ConfigError(f"--older-than: {exc}") from exc
    store = open_store(settings.database_url)
    try:
        pruned = prune(store, older_than=time_now() - keep_s, batch_size=args.batch_size)
    finally:
        store.close()
    print(f"pruned {pruned.payloads} raw payloads and {pruned.attempts} attempts")
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from hub.store import migrate

    settings, _ = _settings(args)
    engine = migrate.connect(settings.database_url)
    try:
        before = migrate.current(engine)
        migrate.upgrade(engine, args.revision)
        after = migrate.current(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"schema already at {after}")
    else:
        print(f"schema upgraded from {before or 'none'} to {after}")
    return 0


def _db_current(args: argparse.Namespace) -> int:
    from hub.store import migrate

    settings, _ = _settings(args)
    engine = migrate.connect(settings.database_url, create=False)
    try:
        revision = migrate.current(engine)
    finally:
        engine.dispose()
    head = migrate.head()
    print(f"current: {revision or 'none'}")
    print(f"head: {head}")
    if revision != head:
        print("the store is behind: `switchboard db upgrade` (or starting the hub) migrates it")
    return 0


def _db_backup(args: argparse.Namespace) -> int:
    from hub.store.backup import backup

    settings, _ = _settings(args)
    if args.path.is_dir():
        raise UsageError(f"{args.path} is a directory; name the backup file to write")
    done = backup(settings.database_url, args.path)
    print(f"backed up {done.events} events and {done.deliveries} deliveries to {done.path}")
    return 0


def _db_restore(args: argparse.Namespace) -> int:
    from hub.store import open_store
    from hub.store.backup import restore

    settings, _ = _settings(args)
    done = restore(args.path, settings.database_url, force=args.force)
    open_store(settings.database_url).close()  # migrates an older backup to this version
    print(f"restored {done.events} events and {done.deliveries} deliveries from {done.path}")
    return 0


def _secrets_new_key(args: argparse.Namespace) -> int:
    from hub.store.crypto import new_key

    print(new_key())
    return 0


def _secrets_rotate(args: argparse.Namespace) -> int:
    from hub.store import open_store
    from hub.store.crypto import TokenCipher
    from hub.store.rotation import rotate_tokens

    settings, _ = _settings(args)
    if not settings.encryption_keys:
        raise ConfigError(
            "store.encryption_keys is not set: there is no key to encrypt under",
            hint="add a key from `switchboard secrets new-key` first",
        )
    store = open_store(settings.database_url)
    try:
        done = rotate_tokens(store, TokenCipher(settings.encryption_keys))
    finally:
        store.close()
    print(f"re-encrypted {done.rewritten} stored documents under the first key")
    if done.busy:
        print(f"{len(done.busy)} documents kept changing; run `secrets rotate` again")
        return 1
    return 0


def _hash_password(args: argparse.Namespace) -> int:
    import getpass

    from hub.auth.passwords import hash_password

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise ConfigError("use a password of at least 8 characters")
    print(hash_password(password))
    return 0


def _register_commands(args: argparse.Namespace) -> int:
    import httpx

    from hub.pipeline.http import USER_AGENT
    from hub.sources._discord_commands import load_commands, register_commands

    token = os.environ.get(args.token_env)
    if not token:
        raise ConfigError(f"set {args.token_env} to the bot token of the application")
    commands = load_commands(args.file)
    with httpx.Client(timeout=15, headers={"User-Agent": USER_AGENT}) as client:
        names = register_commands(
            client,
            commands,
            application_id=args.application_id,
            bot_token=token,
            guild_id=args.guild,
            api_url=args.api_url,
        )
    where = f"server {args.guild}" if args.guild else "every server (global, within an hour)"
    print(f"registered {len(names)} commands for {where}: {', '.join('/' + n for n in names)}")
    return 0


def _gcal_source(args: argparse.Namespace) -> tuple[Settings, Any, Any]:
    """The configured gcal source with its Calendar client, and the channel token."""
    from hub.runtime import make_source
    from hub.sources.gcal import GcalSource

    settings, plugins = _settings(args)
    configured = settings.sources.get("gcal")
    if configured is None or configured.secret is None:
        raise ConfigError(
            "enable sources.gcal with a secret: it is the channel token Google sends back"
        )
    source = make_source(plugins.sources["gcal"], configured.options)
    if not isinstance(source, GcalSource) or source.reader is None:
        raise ConfigError(
            "sources.gcal needs service_account, or client_id, client_secret and refresh_token"
        )
    return settings, source, configured.secret


def _gcal_run(settings: Settings, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `work(ctx)` with an HTTP client and the store, outside any worker."""
    import asyncio

    from hub.clock import SystemClock
    from hub.schedule.upkeep import upkeep_context
    from hub.sources._gcal_api import ApiFailure
    from hub.store import open_store
    from hub.store.crypto import TokenCipher

    async def run() -> Any:
        store = open_store(settings.database_url)
        store.cipher = TokenCipher(settings.encryption_keys)
        try:
            async with upkeep_context(store, SystemClock()) as ctx:
                return await work(ctx)
        finally:
            store.close()

    try:
        return asyncio.run(run())
    except ApiFailure as exc:
        raise ConfigError(f"Google refused: {exc}") from None


def _gcal_watch(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from connectors.base import parse_duration

    if not args.address.startswith("https://"):
        raise ConfigError("--address must be the hub's public https URL of /hooks/gcal")
    settings, source, secret = _gcal_source(args)
    ttl_s = parse_duration(args.ttl).total_seconds()
    channel = _gcal_run(
        settings, lambda ctx: source.watch(ctx, args.calendar, args.address, secret, ttl_s)
    )
    expiration = str(channel.get("expiration") or "")
    when = (
        datetime.fromtimestamp(int(expiration) / 1000, UTC).isoformat()
        if expiration.isdigit()
        else "unknown"
    )
    print(
        f"watching {args.calendar}: channel {channel.get('id')} until {when}; "
        "the hub renews it a day before (serve or switchboard scheduler)"
    )
    return 0


def _gcal_stop(args: argparse.Namespace) -> int:
    settings, source, _ = _gcal_source(args)
    stopped = _gcal_run(settings, lambda ctx: source.stop(ctx, args.calendar))
    print(f"stopped the push channel of {args.calendar}" if stopped else "no channel to stop")
    return 0


def _gcal_auth(args: argparse.Namespace) -> int:
    """Google's installed-app consent flow; needs no switchboard.yaml."""
    import webbrowser

    import httpx

    from hub.pipeline.http import USER_AGENT
    from hub.sources._gcal_consent import run_consent

    if not args.client_id:
        raise UsageError(
            "pass --client-id (or set GOOGLE_CLIENT_ID): the id of a Desktop app OAuth client "
            "(docs/connect.md#google-calendar)"
        )
    client_secret = os.environ.get(args.client_secret_env)
    if not client_secret:
        raise UsageError(f"set {args.client_secret_env} to the OAuth client's secret")

    def show(url: str) -> None:
        print(f"Open this URL in a browser on this machine and allow access:\n\n  {url}\n")
        print(f"Waiting up to {args.timeout} s for Google's redirect to 127.0.0.1 ...", flush=True)
        if not args.no_browser:
            webbrowser.open(url)

    with httpx.Client(timeout=15, headers={"User-Agent": USER_AGENT}) as client:
        token = run_consent(
            client,
            client_id=args.client_id,
            client_secret=client_secret,
            show=show,
            timeout_s=args.timeout,
            auth_url=args.auth_url,
            token_url=args.token_url,
        )
    print(
        f"\nrefresh token: {token}\n\nStore it as a secret, e.g. GOOGLE_REFRESH_TOKEN (read by "
        "switchboard.yaml's gcal destination and source); anyone holding it can use the "
        "granted access until you revoke it."
    )
    return 0
