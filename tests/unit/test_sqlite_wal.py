"""The store keeps SQLite's write-ahead log short: commits checkpoint it in small steps
(WAL_AUTOCHECKPOINT_PAGES), so no single commit copies megabytes while webhooks wait."""

from __future__ import annotations

from pathlib import Path

from hub.store import NewInbound, open_store
from hub.store.engine import WAL_AUTOCHECKPOINT_PAGES
from tests.support import fixture_path

BODY = fixture_path("github", "issues", "opened.json").read_bytes()
PAGE = 4096


def test_the_log_never_grows_much_past_the_checkpoint_step(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    store = open_store(f"sqlite:///{db}")
    batch = 10  # ~135 KB per commit, like a group commit under moderate load
    try:
        for start in range(0, 400, batch):  # ~5.4 MB in all: five times SQLite's default step
            store.insert_events(
                [
                    NewInbound(
                        id=f"e{i}",
                        source="github",
                        provider_delivery_id=f"d{i}",
                        received_at=1_764_000_000.0 + i,
                        headers={"x-github-event": "issues"},
                        body=BODY,
                    )
                    for i in range(start, start + batch)
                ]
            )
        # The log file is reused from its start after each checkpoint: its size is the
        # most it ever held. SQLite's default step (1,000 pages) would leave 4 MB and more.
        largest = (db.with_name("hub.db-wal").stat().st_size) / PAGE
        assert largest < WAL_AUTOCHECKPOINT_PAGES + 3 * len(BODY) * batch / PAGE
        assert largest < 1000
    finally:
        store.close()
