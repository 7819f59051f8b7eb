"""The store itself: `db` (schema, backup, restore) and `secrets` (token encryption)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hub.cli.common import _settings, existing_path
from hub.errors import ConfigError, UsageError


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
