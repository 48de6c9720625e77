"""The command line of ``benchmarks/run.py``: choose, run, store, report."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import shlex
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from .capabilities import NEEDS_REDIS_SERVER, probe_capabilities
from .common import HERE, REPO, VENV, BenchError, log
from .context import Context
from .loadgen import build_loadgen, selftest
from .params import SMOKE, Params
from .probes import git_revision, loadavg, machine, machine_state, now_utc, versions
from .processes import RedisServer
from .report import write_report
from .scenarios import SCENARIOS, Recorder, Scenario
from .targets import TARGET_NAMES

DESCRIPTION = (
    "Run the django-ws benchmark suite and write docs/benchmarks.md with charts."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument(
        "--scenario",
        default="all",
        help=f"all, or a comma list of: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--targets",
        default="all",
        help=f"all, or a comma list of: {', '.join(TARGET_NAMES)}",
    )
    parser.add_argument("--runs", type=int, help="runs per target (default 5; idle 3)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny counts and durations (CI); never writes into docs/",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="directory for benchmarks.md, img/ and benchmarks.json "
        "(default: docs/, results in benchmarks/results.json)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite benchmarks.md and the charts from the stored results; run nothing",
    )
    parser.add_argument(
        "--note", default="", help="a line to show at the top of the report"
    )
    return parser.parse_args(argv)


def chosen_scenarios(arg: str) -> list[str]:
    names = list(SCENARIOS) if arg == "all" else arg.split(",")
    for name in names:
        if name not in SCENARIOS:
            raise SystemExit(
                f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}"
            )
    return names


def chosen_targets(arg: str) -> set[str] | None:
    """The --targets names, or ``None`` for all."""
    wanted = None if arg == "all" else set(arg.split(","))
    if wanted:
        unknown = wanted - set(TARGET_NAMES) - {"raw-redis"}
        if unknown:
            raise SystemExit(
                f"unknown targets {sorted(unknown)}; choose from {TARGET_NAMES}"
            )
    return wanted


def chosen_params(args: argparse.Namespace) -> Params:
    params = dataclasses.replace(SMOKE) if args.smoke else Params()
    if args.runs:
        params.runs = params.idle_runs = args.runs
        params.broadcast_runs = max(
            args.runs, params.broadcast_runs if not args.smoke else 1
        )
    return params


def output_paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    """Where benchmarks.md, the charts and the results JSON go."""
    if args.out or args.smoke:
        out_dir = args.out or HERE / "results" / "smoke"
        return out_dir / "benchmarks.md", out_dir / "img", out_dir / "benchmarks.json"
    return REPO / "docs" / "benchmarks.md", REPO / "docs" / "img", HERE / "results.json"


def stored_results(json_path: Path, smoke: bool) -> dict[str, Any]:
    """The results kept from earlier invocations, never mixing smoke and real."""
    results: dict[str, Any] = {"scenarios": {}}
    if json_path.exists():
        with contextlib.suppress(ValueError):
            results = json.loads(json_path.read_text())
            if bool(results.get("meta", {}).get("smoke")) != smoke:
                results = {"scenarios": {}}
    return results


def run_scenario(
    scenario: Scenario, ctx: Context, wanted: set[str] | None, meta: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """Run a scenario's available targets; return its section and whether it failed."""
    rec = Recorder(scenario)
    skipped: dict[str, str] = {}
    targets = []
    for target in scenario.targets:
        if (
            wanted is not None
            and target.selector not in wanted
            and target.name not in wanted
        ):
            continue
        why = ctx.available(target)
        if why:
            skipped[target.name] = why
        else:
            targets.append(target)
    log(f"== {scenario.name}: {', '.join(t.name for t in targets) or 'nothing to run'}")
    started = {
        "date": now_utc(),
        "git": meta["git"],
        "command": meta["command"],
        **machine_state("before"),
    }
    if targets:
        scenario.run(ctx, targets, rec)
    runs = scenario.runs(ctx.params)
    return {
        "meta": {**started, **machine_state("after")},
        "variants": rec.variants,
        "errors": rec.errors,
        "skipped": skipped,
        "descriptions": rec.descriptions,
        "runs_label": f"{runs} run{'s' if runs > 1 else ''}",
    }, rec.failed()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    scenario_names = chosen_scenarios(args.scenario)
    wanted = chosen_targets(args.targets)
    params = chosen_params(args)
    md_path, img_dir, json_path = output_paths(args)

    if args.report_only:
        results = json.loads(json_path.read_text())
        write_report(results, md_path, img_dir)
        log(f"wrote {md_path} and {img_dir}/bench-*.png from {json_path}")
        return 0
    if not (VENV / "bin" / "python").exists():
        raise SystemExit(f"{VENV} is missing: run `bash benchmarks/setup.sh` first")
    build_loadgen()
    selftest()
    results = stored_results(json_path, args.smoke)
    command = "benchmarks/.venv/bin/python benchmarks/run.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    results["meta"] = {
        "date": now_utc(),
        "git": git_revision(),
        "smoke": args.smoke,
        "command": command.strip(),
        "machine": machine(),
        "versions": versions(),
        "note": args.note,
        "loadavg_before": loadavg(),
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="django-ws-bench-") as tmp:
        ctx = Context(params=params, workdir=Path(tmp), smoke=args.smoke)
        ctx.capabilities = probe_capabilities()
        needs_redis = any(SCENARIOS[n].needs_redis for n in scenario_names)
        with contextlib.ExitStack() as stack:
            if needs_redis and not ctx.capabilities.get("redis"):
                try:
                    ctx.redis = stack.enter_context(RedisServer(ctx.workdir))
                except BenchError as error:
                    for key in NEEDS_REDIS_SERVER:
                        ctx.capabilities[key] = str(error)
            for name in scenario_names:
                section, scenario_failed = run_scenario(
                    SCENARIOS[name], ctx, wanted, results["meta"]
                )
                results["scenarios"][name] = section
                failed |= scenario_failed
                # Kept after each scenario: a later crash or Ctrl-C loses nothing measured.
                json_path.parent.mkdir(parents=True, exist_ok=True)
                json_path.write_text(json.dumps(results, indent=1) + "\n")
    results["meta"]["loadavg_after"] = loadavg()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    write_report(results, md_path, img_dir)
    log(f"wrote {md_path} and {img_dir}/bench-*.png")
    return 1 if failed else 0
