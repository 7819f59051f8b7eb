"""Stored deliveries and payloads: `replay` and `prune` (retention)."""

from __future__ import annotations

import argparse

from hub.cli.common import _duration, _settings, time_now
from hub.errors import ConfigError


def add_replay_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def add_prune_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    prune = sub.add_parser("prune", help="drop old raw payloads and attempt logs (retention)")
    prune.add_argument(
        "--older-than", default="30d", type=_duration, help="age to keep, e.g. 30d (default)"
    )
    prune.add_argument("--batch-size", type=int, default=500, help="rows per transaction")
    prune.set_defaults(run=_prune)


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
