"""Medians over runs, the rows compared against, and how numbers are printed."""

from __future__ import annotations

import statistics
from typing import Any

# Fields of a run whose median the report and the checks read.
MEDIAN_FIELDS = (
    "renders_per_broadcast",
    "frames_made_per_broadcast",
    "frame_bytes",
    "loadgen_cpu_pct",
    "server_cpu_pct",
    "rss_after_kib",
    "publish_per_broadcast",
    "commands_per_broadcast",
    "notify_per_broadcast",
    "statements_per_broadcast",
    "first_ms",
    "p50_ms",
    "p99_ms",
    "calls_per_s",
    "open_s",
    "per_cpu_s",
    "fresh_ms",
    "round_trips_per_broadcast",
    "kib_from_fresh",
    "broadcast_ms",
)


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    values = [r["value"] for r in runs]
    out: dict[str, Any] = {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }
    for key in MEDIAN_FIELDS:
        found = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        if found:
            out[key] = statistics.median(found)
    out["errors"] = sum(int(r.get("errors", 0)) for r in runs)
    out["missed"] = sum(int(r.get("missed", 0)) for r in runs)
    for key in ("commands", "round_trips", "statements"):  # per command: the median over runs
        counts = [r[key] for r in runs if r.get(key)]
        if counts:
            names = sorted({k for c in counts for k in c})
            out[key] = {
                n: statistics.median(c.get(n, 0) for c in counts) for n in names
            }
    return out


def _first_of(candidates: tuple[str, ...], names: list[str]) -> str | None:
    return next((c for c in candidates if c in names), None)


def reference_name(names: list[str]) -> str | None:
    """The Channels row that ``× ref`` divides by."""
    return _first_of(
        ("channels-auth", "channels", "channels-redis", "channels-memory"), names
    )


def raw_name(names: list[str]) -> str | None:
    """The raw floor's row that ``× raw`` divides by."""
    return _first_of(("raw", "raw-redis"), names)


def fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(value: float, base: float | None) -> str:
    if not base:
        return "–"
    return f"{value / base:.2f}×"
