"""Pending verification tokens (Notion's handshake) per source, until an admin decides.

Anyone can post a handshake, so every distinct token is kept with when and from where it
came, none pushes another out, and each stays until an admin confirms one (the others
are then dropped) or rejects it. Stored as one document per source in `snapshots`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from hub.store.snapshots import StoreSnapshots
from hub.store.store import Store

#: Distinct pending notices kept per source at most; past this new ones are dropped (and
#: logged by ingress), never old ones, so a flood cannot push a genuine one out of sight.
MAX_PENDING = 500


def notice_id(notice: str) -> str:
    return hashlib.sha256(notice.encode()).hexdigest()[:16]


def _key(source: str) -> str:
    return f"source-notices:{source}"


def _entries(store: Store, source: str) -> list[dict[str, Any]]:
    doc = StoreSnapshots(store).get(_key(source)) or {}
    return [dict(n) for n in doc.get("notices", []) if isinstance(n, dict) and "notice" in n]


def _put(store: Store, source: str, entries: list[dict[str, Any]], at: float) -> None:
    StoreSnapshots(store).put(_key(source), {"notices": entries}, version=None, now=at)


def add_notice(
    store: Store, source: str, notice: str, at: datetime, address: str | None = None
) -> bool:
    """Keep a notice until an admin decides; False when it was kept already or is dropped."""
    entries = _entries(store, source)
    ident = notice_id(notice)
    if any(n.get("id", notice_id(n["notice"])) == ident for n in entries):
        return False
    if len(entries) >= MAX_PENDING:
        return False
    entry = {"id": ident, "at": at.isoformat(), "notice": notice, "address": address}
    _put(store, source, [entry, *entries], at.timestamp())
    return True


def record_notice(
    store: Store, source: str, notice: str, at: datetime, address: str | None = None
) -> None:
    """Keep a source's notice (Notion's verification token) until an admin decides on it:
    every distinct one, none pushed out by later ones (ingress's hook; see `add_notice`)."""
    add_notice(store, source, notice, at, address)


def list_notices(store: Store, source: str) -> list[dict[str, Any]]:
    """Newest first: {id, at, notice, address, status: pending|confirmed}."""
    return [
        {
            "id": n.get("id") or notice_id(n["notice"]),
            "at": n.get("at"),
            "notice": n["notice"],
            "address": n.get("address"),
            "status": n.get("status", "pending"),
        }
        for n in _entries(store, source)
    ]


def decide_notice(store: Store, source: str, ident: str, *, confirm: bool, at: float) -> bool:
    """Confirm one notice (dropping every other) or reject it; False if it is not there."""
    entries = list_notices(store, source)
    chosen = [n for n in entries if n["id"] == ident]
    if not chosen:
        return False
    if confirm:
        kept = [{**chosen[0], "status": "confirmed"}]
    else:
        kept = [n for n in entries if n["id"] != ident]
    _put(store, source, kept, at)
    return True
