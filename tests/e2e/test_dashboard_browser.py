"""The dashboard in a real browser (Debian's chromium via Playwright), against a real hub
served by uvicorn: log in, open an event, replay a dead delivery, simulate a payload.

Screenshots of every page go to $ARTIFACTS_DIR (default: the test's tmp dir/artifacts).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from hub.app import create_app
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from tests.admin_support import ADMIN_TOKEN, DISCORD_TOKEN, ISSUE_OPENED, admin_settings
from tests.fakes.discord import FakeDiscord
from tests.servers import serve_in_thread
from tests.support import free_port, github_headers, in_ci, post_issue, wait_until

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.slow


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        if in_ci():
            pytest.fail(f"{CHROMIUM} is required in CI: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    return CHROMIUM


@contextlib.contextmanager
def serve_hub(runtime: Runtime) -> Iterator[str]:
    """The whole hub under uvicorn in a thread, lifespan on (writer and worker run)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime, run_worker=True),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 10, f"hub on port {port} started")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_log_in_open_an_event_replay_a_dead_delivery_and_simulate(
    tmp_path: Path, chromium: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    artifacts = Path(os.environ.get("ARTIFACTS_DIR") or tmp_path / "artifacts")
    artifacts.mkdir(parents=True, exist_ok=True)
    fake = FakeDiscord()
    fake.script.append((400, {"message": "Invalid Form Body", "code": 50035}, {}))
    with serve_in_thread(fake.app()) as discord_base:
        url = f"{discord_base}/api/webhooks/1213445701632131072/{DISCORD_TOKEN}"
        runtime = build_runtime(admin_settings(tmp_path, discord_url=url), load_plugins())
        with serve_hub(runtime) as base, sync_playwright() as pw:
            # Given an event whose Discord delivery died on a 400
            with httpx.Client(base_url=base) as poster:
                event_id = post_issue(poster, "browser-1")
            rows = runtime.store.list_deliveries
            wait_until(
                lambda: {r.status for r in rows(inbound_id=event_id)} == {"dead", "delivered"},
                10,
                "one delivery dead, one delivered",
            )
            dead = next(r.id for r in rows(inbound_id=event_id) if r.status == "dead")

            browser = pw.chromium.launch(executable_path=str(chromium))
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            # When an admin logs in with a token
            page.goto(f"{base}/admin/")
            expect(page).to_have_url(f"{base}/admin/login?next=/admin/")
            page.screenshot(path=artifacts / "login.png")
            page.fill("input[name=token]", ADMIN_TOKEN)
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Overview")
            expect(page.locator(".tile.bad")).to_have_count(2)  # 1 failed, 1 in the DLQ
            page.screenshot(path=artifacts / "overview.png", full_page=True)

            # Then the event page shows the payload, normalized event and deliveries
            page.click("nav >> text=Events")
            page.screenshot(path=artifacts / "events.png", full_page=True)
            page.click(f"a[href='/admin/events/{event_id}']")
            expect(page.locator("h1")).to_contain_text(event_id)
            expect(page.locator("text=Invalid Form Body").first).to_be_visible()
            expect(page.locator("pre").first).to_contain_text("github.issues.opened")
            page.screenshot(path=artifacts / "event.png", full_page=True)

            # And a dead delivery replayed from the DLQ gets delivered
            page.goto(f"{base}/admin/deliveries?status=dead")
            page.screenshot(path=artifacts / "dead-letter-queue.png", full_page=True)
            page.click(f"form:has(input[value='{dead}']) >> button")
            expect(page.locator(".notice")).to_contain_text("Replaying 1 delivery.")
            wait_until(
                lambda: getattr(runtime.store.get_delivery(dead), "status", None) == "delivered",
                10,
                "replayed delivery delivered",
            )
            page.goto(f"{base}/admin/deliveries/{dead}")
            expect(page.locator("h1 .status")).to_have_text("delivered")
            page.screenshot(path=artifacts / "delivery.png", full_page=True)

            # And a pasted payload is simulated without sending anything
            page.click("nav >> text=Rules")
            page.select_option("select[name=source]", "github")
            page.fill("textarea[name=headers]", "X-GitHub-Event: issues")
            page.fill("textarea[name=payload]", json.dumps(json.loads(ISSUE_OPENED), indent=1))
            page.click("#simulate button[type=submit]")
            expect(page.locator(".verdicts .match")).to_contain_text("issue-opened")
            expect(page.locator(".results")).to_contain_text("Spelling error in the README file")
            page.screenshot(path=artifacts / "rules-simulate.png", full_page=True)

            page.click("nav >> text=Sources")
            expect(page.locator("code.copy")).to_have_text(f"{base}/hooks/github")
            page.screenshot(path=artifacts / "sources.png", full_page=True)

            # And on a phone (390 px) every page fits the screen and the whole navigation
            # can be reached without scrolling sideways
            page.set_viewport_size({"width": 390, "height": 844})
            for name, path in [
                ("overview", "/admin/"),
                ("events", "/admin/events"),
                ("event", f"/admin/events/{event_id}"),
                ("deliveries", "/admin/deliveries"),
                ("dead-letter-queue", "/admin/deliveries?status=dead"),
                ("delivery", f"/admin/deliveries/{dead}"),
                ("rules", "/admin/rules"),
                ("sources", "/admin/sources"),
            ]:
                page.goto(f"{base}{path}")
                _assert_fits_the_screen(page, path)
                page.screenshot(path=artifacts / f"phone-{name}.png", full_page=True)
            page.goto(f"{base}/admin/rules")
            page.fill("textarea[name=payload]", ISSUE_OPENED.decode())
            page.select_option("select[name=source]", "github")
            page.fill("textarea[name=headers]", "X-GitHub-Event: issues")
            page.click("#simulate button[type=submit]")
            expect(page.locator(".verdicts .match")).to_contain_text("issue-opened")
            _assert_fits_the_screen(page, "/admin/rules/simulate")
            page.screenshot(path=artifacts / "phone-rules-simulate.png", full_page=True)
            browser.close()
        runtime.close()
    assert [r.status for r in fake.received] == [400, 200]
    assert len(list(artifacts.glob("*.png"))) == 17


def _assert_fits_the_screen(page: Any, path: str) -> None:
    """No sideways scrolling: the page is as wide as the screen, every nav link on it."""
    width = page.evaluate("document.documentElement.scrollWidth")
    screen = page.evaluate("window.innerWidth")
    assert width <= screen, f"{path} is {width}px wide on a {screen}px screen"
    for link in page.locator("header nav a").all():
        box = link.bounding_box()
        assert box is not None, f"{path}: {link} is not shown"
        assert box["x"] + box["width"] <= screen, f"{path}: {link} is off the screen"


def test_the_root_url_leads_to_a_styled_sign_in_page_with_no_missing_assets(
    tmp_path: Path, chromium: Path
) -> None:
    from playwright.sync_api import Response, expect, sync_playwright

    runtime = build_runtime(admin_settings(tmp_path), load_plugins())
    failed: list[str] = []
    loaded: list[str] = []

    def record(response: Response) -> None:
        (failed if response.status >= 400 else loaded).append(f"{response.status} {response.url}")

    with serve_hub(runtime) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium))
        page = browser.new_page()
        page.on("response", record)
        # When a newcomer opens the address `make run` prints
        page.goto(f"{base}/")
        # Then they land on the sign-in page, its stylesheet and script load
        expect(page).to_have_url(f"{base}/admin/login?next=/admin/")
        page.wait_for_load_state("load")
        assert failed == [], f"the sign-in page failed to load: {failed}"
        assert {f"200 {base}/admin/static/admin.css", f"200 {base}/admin/static/admin.js"} <= set(
            loaded
        )
        # And the styles apply, and the brand link leads back to the dashboard
        expect(page.locator("a.brand")).to_have_css("font-weight", "700")
        expect(page.locator("a.brand")).to_have_attribute("href", "/admin/")
        browser.close()
    runtime.close()


def test_lists_update_live_a_new_event_appears_and_a_replayed_delivery_changes_in_place(
    tmp_path: Path, chromium: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    fake = FakeDiscord()
    fake.script.append((400, {"message": "Invalid Form Body", "code": 50035}, {}))
    with serve_in_thread(fake.app()) as discord_base:
        url = f"{discord_base}/api/webhooks/1213445701632131072/{DISCORD_TOKEN}"
        runtime = build_runtime(admin_settings(tmp_path, discord_url=url), load_plugins())
        with serve_hub(runtime) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(chromium))
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/admin/login")
            page.fill("input[name=token]", ADMIN_TOKEN)
            page.click("button[type=submit]")
            # Given the events list, open and connected (and a mark a reload would erase)
            page.goto(f"{base}/admin/events")
            expect(page.locator("#live")).to_have_attribute("data-state", "on")
            expect(page.locator("#live")).to_have_text("live")
            page.evaluate("window.stayed = true")

            # When a webhook arrives, then its row appears within a second, without a reload
            with httpx.Client(base_url=base) as poster:
                event_id = post_issue(poster, "live-1")
            expect(page.locator(f"tr[data-id='{event_id}']")).to_be_visible(timeout=1000)
            assert page.evaluate("window.stayed") is True

            # Given its Discord delivery died, shown on the deliveries list
            rows = runtime.store.list_deliveries
            wait_until(
                lambda: {r.status for r in rows(inbound_id=event_id)} == {"dead", "delivered"},
                10,
                "one delivery dead, one delivered",
            )
            dead = next(r.id for r in rows(inbound_id=event_id) if r.status == "dead")
            page.goto(f"{base}/admin/deliveries")
            row = page.locator(f"tr[data-id='{dead}']")
            expect(row.locator(".status")).to_have_text("dead")
            expect(page.locator("#live")).to_have_attribute("data-state", "on")
            page.evaluate("window.stayed = true")

            # When someone replays it through the API, then the row's status changes in place
            replayed = httpx.post(
                f"{base}/api/v1/deliveries/{dead}/replay",
                json={},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert replayed.status_code == 202
            expect(row.locator(".status")).to_have_text("delivered", timeout=5000)
            assert page.evaluate("window.stayed") is True
            assert page.locator("tbody[data-live] tr").count() == 2
            browser.close()
        runtime.close()


def test_a_burst_of_webhooks_reaches_a_live_stream_as_a_few_coalesced_messages(
    tmp_path: Path,
) -> None:
    runtime = build_runtime(admin_settings(tmp_path), load_plugins())
    # A read timeout longer than two messages apart, shorter than the 15 s heartbeat: it
    # ends the read once the stream has gone quiet after the burst.
    timeout = httpx.Timeout(10, read=1.5)
    with serve_hub(runtime) as base, httpx.Client(base_url=base, timeout=timeout) as client:
        client.get("/admin/login")
        client.post(
            "/admin/login",
            data={"csrf": client.cookies["switchboard_login"], "token": ADMIN_TOKEN},
        )

        def burst() -> None:
            with httpx.Client(base_url=base, timeout=10) as poster:
                for n in range(40):
                    headers = github_headers(ISSUE_OPENED, event="issues", delivery=f"burst-{n}")
                    poster.post("/hooks/github", content=ISSUE_OPENED, headers=headers)

        changes: list[float] = []  # when each "change" message arrived
        sender = threading.Thread(target=burst, daemon=True)
        live = {"Accept": "text/event-stream"}
        with client.stream("GET", "/admin/live", headers=live) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.iter_lines()
            assert next(lines) == "retry: 2000"
            assert next(lines) == "event: hello"
            # When 40 webhooks arrive as fast as one client can send them (and are processed)
            started = time.monotonic()
            sender.start()
            with contextlib.suppress(httpx.ReadTimeout):
                for line in lines:
                    if line.startswith("event: "):
                        assert line == "event: change"
                        changes.append(time.monotonic())
        elapsed = time.monotonic() - started
        sender.join(timeout=10)
        wait_until(lambda: runtime.store.count_events("received") == 0, 10, "burst stored")
    runtime.close()
    # Then the stream said "changed" a few times, never more than twice a second
    assert changes, "no change message after a burst of webhooks"
    busiest = max(sum(1 for t in changes if at <= t < at + 1.0) for at in changes)
    assert busiest <= 3, f"{busiest} change messages within one second"
    assert len(changes) <= elapsed / 0.5 + 2, f"{len(changes)} messages in {elapsed:.1f}s"
