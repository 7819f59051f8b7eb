"""`admin` helpers for the dashboard and the API."""

from __future__ import annotations

import argparse
import sys

from hub.errors import ConfigError


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = sub.add_parser("admin", help="admin dashboard and API helpers")
    admin_sub = admin.add_subparsers(title="admin commands")
    hash_pw = admin_sub.add_parser(
        "hash-password", help="print a scrypt hash for admin.users[].password_hash"
    )
    hash_pw.set_defaults(run=_hash_password)


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
