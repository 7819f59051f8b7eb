"""Prometheus /metrics: store-backed numbers read at scrape time, plus ingress counters.

Events, deliveries, attempts, the DLQ, queue depths and end-to-end latency are counted
from the store when Prometheus scrapes, so they are right however many worker processes
run and survive restarts. Only what never reaches the store, rejected webhooks, is
counted in this process; each ingress process exports its own share.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from hub.errors import RequestRejected, StoreError
from hub.runtime import Runtime
from hub.store import stats

log = logging.getLogger("switchboard.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreCollector(Collector):
    """Reads counts from the store on every scrape."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("switchboard_store_up", "1 if the store answered this scrape.")
        try:
            families = list(self._families())
        except StoreError as exc:
            log.warning("metrics: store unavailable: %s", exc)
            up.add_metric([], 0)
            yield up
            yield from self._rules()
            return
        up.add_metric([], 1)
        yield up
        yield from families
        yield from self._rules()

    def _families(self) -> Iterator[Metric]:
        store = self.runtime.store
        events = stats.count_by(store, "events", "source", "status")
        received = CounterMetricFamily(
            "switchboard_events_received", "Webhooks accepted and stored.", labels=["source"]
        )
        by_source: dict[str, int] = {}
        for (source, _), n in events.items():
            by_source[source] = by_source.get(source, 0) + n
        for source, n in sorted(by_source.items()):
            received.add_metric([source], n)
        yield received
        yield _gauge(
            "switchboard_events",
            "Stored events by processing status.",
            events,
            ["source", "status"],
        )

        deliveries = stats.count_by(store, "deliveries", "connector", "status")
        yield _gauge(
            "switchboard_deliveries",
            "Deliveries by current status.",
            deliveries,
            ["connector", "status"],
        )
        delivered = CounterMetricFamily(
            "switchboard_delivered",
            "Deliveries confirmed by the destination.",
            labels=["connector"],
        )
        dead = 0
        for (connector, status), n in sorted(deliveries.items()):
            if status == "delivered":
                delivered.add_metric([connector], n)
            elif status == "dead":
                dead += n
        yield delivered
        dlq = GaugeMetricFamily(
            "switchboard_dead_letter_deliveries", "Dead deliveries waiting for a replay."
        )
        dlq.add_metric([], dead)
        yield dlq

        attempts = CounterMetricFamily(
            "switchboard_delivery_attempts",
            "Send attempts by outcome (ok, retry, fail, error).",
            labels=["connector", "outcome"],
        )
        for (connector, outcome), n in sorted(stats.attempts_by_outcome(store).items()):
            attempts.add_metric([connector, outcome], n)
        yield attempts

        now = self.runtime.clock.now().timestamp()
        depth = GaugeMetricFamily(
            "switchboard_queue_depth",
            "Work waiting per queue (events to process, deliveries pending or in flight).",
            labels=["queue"],
        )
        for queue, n in sorted(stats.backlog(store, now=now).items()):
            depth.add_metric([queue], n)
        yield depth

        matches = CounterMetricFamily(
            "switchboard_rule_matches", "Distinct events each rule matched.", labels=["rule"]
        )
        for rule_id, counts in sorted(stats.rule_counts(store).items()):
            matches.add_metric([rule_id], counts.matched_events)
        yield matches

        hist = stats.latency_histogram(store)
        latency = HistogramMetricFamily(
            "switchboard_end_to_end_latency_seconds",
            "Webhook received → delivery confirmed, per delivered delivery.",
        )
        latency.add_metric([], [(_le(b), n) for b, n in hist.buckets], sum_value=hist.sum_s)
        yield latency

    def _rules(self) -> Iterator[Metric]:
        ref = self.runtime.rules
        loaded = GaugeMetricFamily("switchboard_rules_loaded", "Rules in the live rule set.")
        loaded.add_metric([], len(ref.current.rules))
        yield loaded
        failed = GaugeMetricFamily(
            "switchboard_rules_reload_failed",
            "1 while the last rule reload was rejected (the previous set keeps running).",
        )
        failed.add_metric([], 1 if ref.last_error else 0)
        yield failed


class HubMetrics:
    """One registry per app (no global default registry), served at /metrics."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(StoreCollector(runtime))
        self.rejected = Counter(
            "switchboard_ingress_rejected",
            "Webhooks refused at ingress (counted by this process).",
            ["source", "reason"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def endpoint(self, request: Request) -> Response:
        body = await asyncio.to_thread(self.render)
        return Response(body, media_type=CONTENT_TYPE)


def record_rejection(request: Request, exc: RequestRejected) -> None:
    """Count a refused webhook (called from the ingress error handler)."""
    metrics = getattr(request.state, "metrics", None)
    if isinstance(metrics, HubMetrics) and request.url.path.startswith("/hooks/"):
        source = str(request.path_params.get("source", ""))
        count_rejection(metrics, request.state.runtime, source, exc)


def count_rejection(
    metrics: HubMetrics, runtime: Runtime, source: str, exc: RequestRejected
) -> None:
    """Count a refused webhook to `source` (the ingress fast path calls this directly)."""
    # Only configured names become labels: /hooks/<anything> must not grow the series.
    metrics.rejected.labels(source if source in runtime.sources else "_unknown", exc.code).inc()


def _gauge(
    name: str, documentation: str, counts: dict[tuple[str, ...], int], labels: list[str]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, n in sorted(counts.items()):
        family.add_metric(list(key), n)
    return family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)
