"""Geometry for the overview's inline SVG throughput chart (drawn by the template)."""

from __future__ import annotations

from dataclasses import dataclass

from hub.store.stats import MinuteBucket

WIDTH, HEIGHT, PAD = 720, 160, 24


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str  # received | delivered | failed
    title: str


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    peak: int
    width: int = WIDTH
    height: int = HEIGHT
    pad: int = PAD


def throughput_chart(buckets: list[MinuteBucket], label: list[str]) -> Chart:
    """Three thin bars per minute (received, delivered, failed), scaled to the peak."""
    peak = max([1, *(max(b.received, b.delivered, b.failed) for b in buckets)])
    slot = (WIDTH - PAD) / max(1, len(buckets))
    bar_w = max(1.0, slot / 3 - 1)
    usable = HEIGHT - PAD
    bars = []
    for i, (bucket, name) in enumerate(zip(buckets, label, strict=True)):
        for j, (kind, value) in enumerate(
            (
                ("received", bucket.received),
                ("delivered", bucket.delivered),
                ("failed", bucket.failed),
            )
        ):
            h = usable * value / peak
            bars.append(
                Bar(
                    x=PAD + i * slot + j * (bar_w + 1),
                    y=usable - h,
                    width=bar_w,
                    height=h,
                    kind=kind,
                    title=f"{name}: {value} {kind}",
                )
            )
    return Chart(bars, peak)
