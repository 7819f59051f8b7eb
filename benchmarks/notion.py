"""Notion API budget: 100 webhooks for 10 pages in 5 s, against a fake Notion on loopback.

Goals (issue 6): at most 10 page fetches (one per page instead of one per webhook: at
least 90% fewer API calls) and never more than 3 requests in any 1-second window at the
fake Notion (Notion's documented 3 requests/s per integration).

The hub runs embedded (SQLite, in-process worker) with the Notion source's default
coalescing window (2 s, sliding, capped at 5 windows). Between webhooks the fake's pages
change status, as a team editing tasks would, so every burst carries a real diff.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import hmac
import json
import random
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
from starlette.testclient import TestClient  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hub.app import create_app  # noqa: E402
from hub.plugins import load_plugins  # noqa: E402
from hub.runtime import build_runtime  # noqa: E402
from tests.fakes.notion import FAKE_TOKEN, FakeNotion, notion_fixture  # noqa: E402
from tests.servers import serve_in_thread  # noqa: E402
from tests.support import make_settings  # noqa: E402

VERIFICATION_TOKEN = "secret_bench_verification_not_real"
TASKS_DB = "8e2f6a14-9c3b-4d5e-a1f2-3b4c5d6e7f80"
STATUSES = ["Not started", "In progress", "Done"]
RULES = """
rules:
  - id: task-changed
    on: notion.page.*
    actions:
      - log: {to: inbox, message: "{{ event.data.entity.id }} {{ event.data.changes | length }}"}
"""


def _page(template: dict[str, Any], page_id: str, status: str) -> dict[str, Any]:
    page = copy.deepcopy(template)
    page["id"] = page_id
    page["properties"]["Status"]["status"]["name"] = status
    return page


def _webhook(page_id: str, n: int) -> bytes:
    payload = copy.deepcopy(notion_fixture("webhooks", "page.properties_updated.json"))
    payload["id"] = str(uuid.UUID(int=n + 1))
    payload["entity"]["id"] = page_id
    return json.dumps(payload).encode()


def run(webhooks: int, pages: int, seconds: float, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    fake = FakeNotion.with_fixtures()
    template = notion_fixture("api", "pages", "launch-post.before.json")
    ids = [str(uuid.UUID(int=0x153104CD477E809D8DC4FF2D96AE0000 + i)) for i in range(pages)]
    for page_id in ids:
        fake.put_page(_page(template, page_id, STATUSES[0]))
    with tempfile.TemporaryDirectory() as tmp, serve_in_thread(fake.app()) as base:
        tmp_path = Path(tmp)
        source = (
            f"  notion:\n    secret: {{env: BENCH_NOTION_SECRET}}\n"
            f'    api_token: {{env: BENCH_NOTION_TOKEN}}\n    api_url: "{base}"\n'
            f'    databases: {{"{TASKS_DB}": {{kind: task}}}}'
        )
        settings = make_settings(
            tmp_path,
            rules=RULES,
            extra_sources=source,
            environ={"BENCH_NOTION_SECRET": VERIFICATION_TOKEN, "BENCH_NOTION_TOKEN": FAKE_TOKEN},
        )
        runtime = build_runtime(settings, load_plugins())
        key = VERIFICATION_TOKEN.encode()
        started = time.perf_counter()
        with TestClient(create_app(runtime, run_worker=True)) as client:
            for n in range(webhooks):
                page_id = rng.choice(ids)
                fake.put_page(_page(template, page_id, rng.choice(STATUSES)))
                body = _webhook(page_id, n)
                signature = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
                response = client.post(
                    "/hooks/notion",
                    content=body,
                    headers={"X-Notion-Signature": signature, "Content-Type": "application/json"},
                )
                assert response.status_code in (200, 202), response.text
                pause = started + (n + 1) * seconds / webhooks - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)  # noqa: TID251 - pacing the load, not hub code
            deadline = time.perf_counter() + 60
            while time.perf_counter() < deadline and _open_bursts(runtime) > 0:
                time.sleep(0.1)  # noqa: TID251 - waiting for the last windows to flush
            time.sleep(1.0)  # noqa: TID251 - let the last deliveries land
        inbox = tmp_path / "inbox.log"
        events = len(inbox.read_text().splitlines()) if inbox.exists() else 0
        runtime.close()
    times = sorted(seen.at for seen in fake.seen)
    page_fetches = sum(1 for seen in fake.seen if seen.path.startswith("/v1/pages/"))
    peak = max((sum(1 for t in times if s <= t < s + 1.0) for s in times), default=0)
    return {
        "webhooks": webhooks,
        "pages": pages,
        "page_fetches": page_fetches,
        "api_calls": len(times),
        "saved_pct": 100.0 * (1 - page_fetches / webhooks),
        "peak_per_1s": peak,
        "events_routed": events,
    }


def _open_bursts(runtime: Any) -> int:
    from sqlalchemy import func, select

    from hub.store.tables import groups

    with runtime.store.engine.connect() as conn:
        return int(
            conn.scalar(
                select(func.count())
                .select_from(groups)
                .where(groups.c.status.in_(("open", "flushing")))
            )
            or 0
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=100)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    result = run(args.webhooks, args.pages, args.seconds, args.seed)
    print(f"{result['webhooks']} webhooks for {result['pages']} pages in {args.seconds:.0f} s")
    print(f"  page fetches      {result['page_fetches']:>4}   (goal <= {args.pages})")
    print(f"  all Notion calls  {result['api_calls']:>4}   (fetches + one schema read)")
    print(f"  fetches saved     {result['saved_pct']:>5.1f}%  vs one per webhook (goal >= 90%)")
    print(f"  peak requests/1s  {result['peak_per_1s']:>4}   (goal <= 3)")
    print(f"  events routed     {result['events_routed']:>4}")


if __name__ == "__main__":
    main()
