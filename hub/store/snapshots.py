"""Entity snapshots for sources that diff what they fetch (Notion pages, calendar events)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from hub.store.store import Store
from hub.store.tables import snapshots


class StoreSnapshots:
    """`SnapshotStore` (hub/sources/base.py) over the store's `snapshots` table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def get(self, key: str) -> dict[str, Any] | None:
        with self._store.guard("read a snapshot"), self._store.engine.connect() as conn:
            doc = conn.scalar(select(snapshots.c.doc).where(snapshots.c.key == key))
        return dict(self._store.cipher.open_doc(doc)) if isinstance(doc, dict) else None

    def put(self, key: str, doc: dict[str, Any], *, version: str | None, now: float) -> bool:
        """Keep `doc` unless a newer version is stored already; True when written.

        Versions are compared as strings, which orders RFC 3339 UTC times correctly; two
        workers that fetched the same page at different moments cannot move it backwards.
        Token fields are sealed with the store's cipher (hub/store/crypto.py).
        """
        doc = self._store.cipher.seal_doc(doc)
        with self._store.guard("write a snapshot"), self._store.engine.begin() as conn:
            stored = conn.execute(select(snapshots.c.version).where(snapshots.c.key == key)).first()
            if stored is None:
                conn.execute(
                    snapshots.insert().values(key=key, version=version, doc=doc, updated_at=now)
                )
                return True
            if version is not None and stored[0] is not None and version < stored[0]:
                return False
            conn.execute(
                update(snapshots)
                .where(snapshots.c.key == key)
                .values(version=version, doc=doc, updated_at=now)
            )
        return True
