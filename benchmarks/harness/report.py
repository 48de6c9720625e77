"""docs/benchmarks.md: how it is measured, the Targets table, a section per scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .charts import chart
from .checks import targets_markdown
from .reconciliation import HARNESS_RECONCILIATION
from .scenarios import SCENARIOS
from .summary import fmt, ratio, raw_name, reference_name, summarize

Column = tuple[str, Callable[[dict[str, Any]], str]]


def _pct(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda s: f"{s.get(key, 0):.0f}%"


LOADGEN_CPU: Column = ("loadgen CPU", _pct("loadgen_cpu_pct"))


def extra_columns(name: str, raw_per_cpu_s: float | None) -> list[Column]:
    """The columns a scenario's tables show between ``min–max`` and ``errors``."""
    if name in ("pingpong", "churn", "churn-browser"):
        return [
            ("per server CPU-s", lambda s: fmt(s.get("per_cpu_s", 0))),
            ("× raw per CPU-s", lambda s: ratio(s.get("per_cpu_s", 0), raw_per_cpu_s)),
            (
                "p50 / p99 ms",
                lambda s: f"{s.get('p50_ms', 0):.2f} / {s.get('p99_ms', 0):.2f}",
            ),
            ("server CPU", _pct("server_cpu_pct")),
            LOADGEN_CPU,
        ]
    if name == "scale-idle":
        return [
            ("RSS at N", lambda s: f"{s.get('rss_after_kib', 0) / 1024:,.0f} MiB"),
            ("broadcast ms", lambda s: f"{s.get('broadcast_ms', 0):,.1f}"),
            LOADGEN_CPU,
        ]
    if name in ("broadcast-rate", "broadcast-rate-redis"):
        return [
            ("ms per broadcast", lambda s: f"{s.get('broadcast_ms', 0):,.1f}"),
            LOADGEN_CPU,
        ]
    if name == "idle-echo":
        return [
            ("from fresh", lambda s: f"{s.get('kib_from_fresh', 0):.1f}"),
            ("RSS at N", lambda s: f"{s.get('rss_after_kib', 0) / 1024:,.0f} MiB"),
            ("time to open N", lambda s: f"{s.get('open_s', 0):.1f} s"),
            LOADGEN_CPU,
        ]
    if name == "idle":
        return [
            ("RSS at N", lambda s: f"{s.get('rss_after_kib', 0) / 1024:,.0f} MiB"),
            ("time to open N", lambda s: f"{s.get('open_s', 0):.1f} s"),
            LOADGEN_CPU,
        ]
    if name in ("broadcast", "history-broadcast"):
        return [
            ("first receipt ms", lambda s: f"{s.get('first_ms', 0):.2f}"),
            LOADGEN_CPU,
        ]
    if name == "broadcast-redis":
        return [
            ("PUBLISH / broadcast", lambda s: f"{s.get('publish_per_broadcast', 0):g}"),
            (
                "Redis commands / broadcast",
                lambda s: f"{s.get('commands_per_broadcast', 0):g}",
            ),
            LOADGEN_CPU,
        ]
    if name == "broadcast-postgres":
        return [
            ("NOTIFY / broadcast", lambda s: _counted(s, "notify_per_broadcast")),
            (
                "PostgreSQL statements / broadcast",
                lambda s: _counted(s, "statements_per_broadcast"),
            ),
            ("PUBLISH / broadcast", lambda s: _counted(s, "publish_per_broadcast")),
            (
                "Redis commands / broadcast",
                lambda s: _counted(s, "commands_per_broadcast"),
            ),
            LOADGEN_CPU,
        ]
    if name == "history-redis":
        return [
            (
                "round trips / broadcast",
                lambda s: f"{s.get('round_trips_per_broadcast', 0):g}",
            ),
            (
                "Redis commands / broadcast (scripts' included)",
                lambda s: f"{s.get('commands_per_broadcast', 0):g}",
            ),
            LOADGEN_CPU,
        ]
    if name == "history-memory":
        return [("RSS at N", lambda s: f"{s.get('rss_after_kib', 0) / 1024:,.0f} MiB")]
    if name == "live-fragment":
        return [
            ("renders / broadcast", lambda s: f"{s.get('renders_per_broadcast', 0):g}"),
            ("frame bytes", lambda s: f"{s.get('frame_bytes', 0):g}"),
        ]
    if name == "sync-broadcast":
        return [("calls/s", lambda s: f"{s.get('calls_per_s', 0):,.0f}")]
    return []


def _counted(summary: dict[str, Any], key: str) -> str:
    """A count per broadcast, or a dash for the other broker's targets."""
    return f"{summary[key]:g}" if key in summary else "–"


def measured_line(meta: dict[str, Any]) -> str:
    """When, at which commit and in which machine state a section was measured."""
    line = (
        f"Measured {meta['date']} at `{meta['git']}` with `{meta['command']}`; "
        f"load average {meta.get('loadavg_before', '?')} before, "
        f"{meta.get('loadavg_after', '?')} after"
    )
    if "cpu_probe_ms_after" in meta:
        line += (
            f"; CPU probe {meta['cpu_probe_ms_before']} ms before, "
            f"{meta['cpu_probe_ms_after']} ms after (a fixed Python loop)"
        )
    if "loopback_probe_us_after" in meta:
        line += (
            f"; loopback probe {meta['loopback_probe_us_before']} µs before, "
            f"{meta['loopback_probe_us_after']} µs after (a 1-byte TCP send and "
            "receive)"
        )
    return line + ". Higher probes mean a slower machine."


def variant_table(name: str, variant: str, targets: dict[str, Any]) -> list[str]:
    scenario = SCENARIOS[name]
    summaries = {t: summarize(runs) for t, runs in targets.items()}
    names = list(summaries)
    base = raw_name(names)
    ref = reference_name(names)
    columns = extra_columns(name, summaries[base].get("per_cpu_s") if base else None)
    header = [
        *("target", scenario.unit, "× raw", "× ref", "min–max"),
        *[c for c, _ in columns],
        "errors",
    ]
    lines = [f"**{variant}** (ref = `{ref or 'none'}`)", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for target, s in summaries.items():
        # Logged-in rows compare with Channels logged in, when it was measured.
        row_ref = "channels-login" if target.endswith("-login") else ref
        if row_ref not in summaries:
            row_ref = ref
        row = [
            f"`{target}`",
            fmt(s["median"]),
            ratio(s["median"], summaries[base]["median"] if base else None),
            ratio(s["median"], summaries[row_ref]["median"] if row_ref else None),
            f"{fmt(s['min'])}–{fmt(s['max'])}",
            *[f(s) for _, f in columns],
            str(s["errors"] + s["missed"]),
        ]
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def redis_commands_markdown(name: str, data: dict[str, Any]) -> list[str]:
    """Redis commands per broadcast by command (and round trips, when counted)."""
    kinds = [("commands", "Redis commands per broadcast, by command")]
    if name == "history-redis":
        kinds = [
            ("round_trips", "Round trips per broadcast (commands clients sent)"),
            ("commands", "Redis commands per broadcast, the scripts' own included"),
        ]
    lines = []
    for key, title in kinds:
        lines += [f"{title} (median over runs):", ""]
        for targets in data["variants"].values():
            for target, runs in targets.items():
                counts = summarize(runs).get(key, {})
                shown = ", ".join(f"{k} {v:g}" for k, v in counts.items() if v)
                lines.append(f"- `{target}`: {shown or 'none'}")
        lines.append("")
    return lines


def broker_statements_markdown(data: dict[str, Any]) -> list[str]:
    """What each target ran at its broker per broadcast: statements or commands."""
    lines = ["Broker work per broadcast, by statement or command (median over runs):", ""]
    for targets in data["variants"].values():
        for target, runs in targets.items():
            summary = summarize(runs)
            counts = summary.get("statements") or summary.get("commands") or {}
            shown = "; ".join(f"`{k}` {v:g}" for k, v in counts.items() if v)
            lines.append(f"- `{target}`: {shown or 'none'}")
    lines.append("")
    return lines


def cluster_nodes_markdown(data: dict[str, Any]) -> list[str]:
    """Broker commands per broadcast on each node that ran any (last run)."""
    lines = ["Broker commands per broadcast, per node that ran any (last run):", ""]
    for targets in data["variants"].values():
        for target, runs in targets.items():
            nodes = runs[-1].get("commands_per_node", {})
            shown = "; ".join(
                f"{node}: " + ", ".join(f"{k} {v:g}" for k, v in calls.items())
                for node, calls in nodes.items()
            )
            lines.append(f"- `{target}`: {shown or 'none'}")
    lines.append("")
    return lines


def scenario_markdown(name: str, data: dict[str, Any]) -> list[str]:
    scenario = SCENARIOS[name]
    better = "higher is better" if scenario.higher_is_better else "lower is better"
    lines = [f"## {scenario.title}", "", scenario.method, ""]
    if data.get("meta"):
        lines += [measured_line(data["meta"]), ""]
    lines.append(
        f"Median of {data['runs_label']}; {scenario.metric}, {better}. "
        "`× raw` and `× ref` divide by the raw app's and by the Channels reference's "
        "number from the same invocation."
    )
    if name in ("pingpong", "churn", "churn-browser"):
        lines.append(
            "*per server CPU-s* divides everything the server completed by the CPU "
            "seconds it used (from /proc): unlike the rate, it does not drop when other "
            "work shares core 0 (then *server CPU* stays well under 100% at 50 "
            "connections)."
        )
    lines.append("")
    for variant, targets in data["variants"].items():
        lines += variant_table(name, variant, targets)
    if name in ("broadcast-redis", "history-redis"):
        lines += redis_commands_markdown(name, data)
    if name == "broadcast-cluster":
        lines += cluster_nodes_markdown(data)
    if name == "broadcast-postgres":
        lines += broker_statements_markdown(data)
    if data.get("errors"):
        lines += ["Failures:", ""]
        for target, errors in data["errors"].items():
            lines.append(f"- `{target}`: {errors[-1][:300]}")
        lines.append("")
    if data.get("skipped"):
        lines.append(
            "Not run: "
            + "; ".join(f"`{t}` ({why})" for t, why in data["skipped"].items())
        )
        lines.append("")
    lines.append(
        "Targets: " + "; ".join(f"`{t}` {d}" for t, d in data["descriptions"].items())
    )
    lines += ["", f"![{scenario.title}](img/bench-{name}.png)", ""]
    return lines


HOW_IT_IS_MEASURED = [
    "## How it is measured",
    "",
    "- One uvicorn worker per target (`--http httptools --loop uvloop --ws "
    "websockets-sansio`, access log off), pinned to core 0 with `taskset -c 0`.",
    "- The load generator is C (`benchmarks/loadgen/loadgen.c`: single-threaded epoll, "
    "RFC 6455 client, masked text frames), pinned to core 1; it reports its own CPU time "
    "(`getrusage`), shown as *loadgen CPU* (100% would mean it is the bottleneck). "
    "*server CPU* is the server process's CPU time (from /proc) over the loadgen's wall "
    "time, warm-up included.",
    "- JSON over text frames everywhere. Targets run interleaved (run 1 of every "
    "target, then run 2, ...), in alternating order (forward, then backward) so that a "
    "drift in the machine's speed does not favour whichever target comes first; medians "
    "of 5 runs (idle memory: 3). Ratios are between numbers of the same invocation.",
    "- The group history scenarios that follow a replay (`history-recovery`) or fill a "
    "history (`history-memory`) use a Python client instead "
    "(`benchmarks/history_client.py`, websockets), pinned to core 1 too.",
    "- Traffic stays on 127.0.0.1. The loadgen's framing is checked by "
    "`benchmarks/loadgen/selftest.py` before every invocation, and every echo is checked "
    "(`errors` counts connect/handshake/protocol errors, wrong echoes, unexpected closes "
    "and missed broadcast receipts).",
    "",
    "Reproduce:",
    "",
    "```sh",
    "bash benchmarks/setup.sh",
    "benchmarks/.venv/bin/python benchmarks/run.py --scenario all",
    "```",
    "",
    "Each section below names the command, commit and time it was measured with "
    "(`--scenario NAME` re-runs one section; the others are kept from "
    "`benchmarks/results.json`).",
    "",
]


def write_report(results: dict[str, Any], md_path: Path, img_dir: Path) -> None:
    """Write ``md_path`` and a chart per scenario into ``img_dir``."""
    meta = results["meta"]
    lines = [
        "# Benchmarks",
        "",
        "django-ws against a bare ASGI app (the floor), Channels 4, Starlette and django-ws "
        "1.0.2, all served by the same uvicorn. Written by `benchmarks/run.py`; do not edit "
        "by hand.",
        "",
    ]
    if meta.get("smoke"):
        lines += [
            "> **Smoke run**: tiny counts and durations, numbers meaningless.",
            "",
        ]
    if meta.get("note"):
        lines += [f"> {meta['note']}", ""]
    lines += HOW_IT_IS_MEASURED
    lines += HARNESS_RECONCILIATION
    lines += targets_markdown(results)
    for name in SCENARIOS:
        if name in results["scenarios"]:
            lines += scenario_markdown(name, results["scenarios"][name])
            chart(name, results["scenarios"][name], img_dir / f"bench-{name}.png")
    lines += ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in meta["machine"].items()]
    lines += ["", "## Versions", ""]
    for venv, pkgs in meta["versions"].items():
        lines.append(f"`{venv}`: " + ", ".join(f"{k} {v}" for k, v in pkgs.items()))
        lines.append("")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(lines).rstrip() + "\n")
