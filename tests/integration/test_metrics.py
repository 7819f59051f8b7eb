"""/metrics scraped and parsed like Prometheus does: store-backed counts are the same from
any process, ingress rejections are counted by source and reason."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from hub.app import create_app
from hub.plugins import load_plugins
from hub.runtime import Runtime, build_runtime
from tests.admin_support import ISSUE_OPENED
from tests.fakes.discord import FakeDiscord
from tests.support import github_headers, make_settings, post_issue, wait_until

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _done(runtime: Runtime, event_id: str) -> bool:
    rows = runtime.store.list_deliveries(inbound_id=event_id)
    return len(rows) == 2 and all(r.status in ("delivered", "dead") for r in rows)


def _settled_skipping(runtime: Runtime, event_id: str) -> bool:
    rows = runtime.store.list_deliveries(inbound_id=event_id)
    return len(rows) == 2 and all(r.status in ("delivered", "skipped") for r in rows)


def test_metrics_count_events_deliveries_attempts_dead_and_latency(
    tmp_path: Path, discord: tuple[FakeDiscord, str]
) -> None:
    fake, url = discord
    fake.script.append((400, {"message": "Invalid Form Body", "code": 50035}, {}))
    runtime = build_runtime(make_settings(tmp_path, discord_url=url), load_plugins())
    with TestClient(create_app(runtime, run_worker=True)) as client:
        ids = [post_issue(client, f"m-{n}") for n in range(3)]
        wait_until(lambda: all(_done(runtime, e) for e in ids), 10, "deliveries settled")
        samples = scrape(client)
    runtime.close()

    assert value(samples, "switchboard_store_up") == 1
    assert value(samples, "switchboard_events_received_total", source="github") == 3
    assert value(samples, "switchboard_events", source="github", status="processed") == 3
    assert value(samples, "switchboard_deliveries", connector="discord", status="dead") == 1
    assert value(samples, "switchboard_deliveries", connector="discord", status="delivered") == 2
    assert value(samples, "switchboard_delivered_total", connector="log") == 3
    assert value(samples, "switchboard_dead_letter_deliveries") == 1
    assert (
        value(samples, "switchboard_delivery_attempts_total", connector="discord", outcome="fail")
        == 1
    )
    assert (
        value(samples, "switchboard_delivery_attempts_total", connector="discord", outcome="ok")
        == 2
    )
    assert value(samples, "switchboard_queue_depth", queue="events") == 0
    assert value(samples, "switchboard_rule_matches_total", rule="issue-opened") == 3
    assert value(samples, "switchboard_rules_loaded") == 1
    assert value(samples, "switchboard_rules_reload_failed") == 0
    # Five deliveries confirmed: the histogram counts each once, buckets are cumulative.
    latency = "switchboard_end_to_end_latency_seconds"
    assert value(samples, f"{latency}_count") == 5
    assert value(samples, f"{latency}_bucket", le="+Inf") == 5
    bounds = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in samples.items()
        if name == f"{latency}_bucket"
    )
    counts = [v for _, v in bounds]
    assert counts == sorted(counts)
    assert 0 < value(samples, f"{latency}_sum") < 5 * 10


def test_every_process_reports_the_same_store_backed_counts(tmp_path: Path) -> None:
    # Given a hub that processed events, and a second app (another process's view) on the
    # same store that processed nothing itself
    settings = make_settings(tmp_path)
    worker_side = build_runtime(settings, load_plugins())
    scraper_side = build_runtime(settings, load_plugins())
    with TestClient(create_app(worker_side, run_worker=True)) as client:
        ids = [post_issue(client, f"mp-{n}") for n in range(4)]
        wait_until(
            lambda: all(_settled_skipping(worker_side, e) for e in ids), 10, "deliveries settled"
        )
        first = scrape(client)
    # When the other process is scraped
    with TestClient(create_app(scraper_side, run_worker=False)) as other:
        second = scrape(other)
    worker_side.close()
    scraper_side.close()
    # Then it reports the same totals
    for name, labels in (
        ("switchboard_events_received_total", {"source": "github"}),
        ("switchboard_delivered_total", {"connector": "log"}),
        ("switchboard_deliveries", {"connector": "discord", "status": "skipped"}),
    ):
        assert value(second, name, **labels) == value(first, name, **labels) == 4


def test_rejected_webhooks_are_counted_by_source_and_reason(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path), load_plugins())
    with TestClient(create_app(runtime, run_worker=False)) as client:
        headers = github_headers(ISSUE_OPENED, event="issues", delivery="r-1")
        headers["X-Hub-Signature-256"] = "sha256=" + "0" * 64
        for _ in range(2):
            assert (
                client.post("/hooks/github", content=ISSUE_OPENED, headers=headers).status_code
                == 401
            )
        for name in ("nosuch", "other"):
            assert client.post(f"/hooks/{name}", content=b"{}").status_code == 404
        samples = scrape(client)
    runtime.close()
    rejected = "switchboard_ingress_rejected_total"
    assert value(samples, rejected, source="github", reason="bad_signature") == 2
    # Unknown names share one label value, so random paths cannot grow the series.
    assert value(samples, rejected, source="_unknown", reason="unknown_source") == 2
    assert not any(dict(labels).get("source") == "nosuch" for _, labels in samples)


def test_a_store_outage_shows_as_store_up_zero_not_a_failed_scrape(tmp_path: Path) -> None:
    runtime = build_runtime(make_settings(tmp_path), load_plugins())
    with TestClient(create_app(runtime, run_worker=False)) as client:
        with runtime.store.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE deliveries")
        samples = scrape(client)
    runtime.close()
    assert value(samples, "switchboard_store_up") == 0
    assert value(samples, "switchboard_rules_loaded") == 1
