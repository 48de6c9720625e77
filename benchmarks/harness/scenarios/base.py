"""What every scenario shares: its description, the recorder, the order of runs."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any, Callable

from ..common import BenchError, log
from ..context import Context
from ..params import Params
from ..processes import ServerProcess, proc_cpu_s
from ..targets import Target


@dataclass
class Scenario:
    name: str
    title: str
    metric: str  # what the number is
    unit: str
    higher_is_better: bool
    targets: list[Target]
    run: Callable[[Context, list[Target], Recorder], None]
    method: str = ""
    needs_redis: bool = False
    runs_param: str = "runs"  # the Params field that says how many runs

    def runs(self, params: Params) -> int:
        return int(getattr(params, self.runs_param))


class Recorder:
    """Collects per-run measurements: results[variant][target] -> list of runs."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.variants: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.errors: dict[str, list[str]] = {}
        self.descriptions: dict[str, str] = {}

    def add(self, variant: str, target: Target, value: float, **extra: Any) -> None:
        self.descriptions[target.name] = target.description
        self.variants.setdefault(variant, {}).setdefault(target.name, []).append(
            {"value": value, **extra}
        )
        shown = ", ".join(
            f"{k}={v}" for k, v in extra.items() if isinstance(v, (int, float))
        )
        log(
            f"  {self.scenario.name} {variant} {target.name}: {value:,.2f} "
            f"{self.scenario.unit}  ({shown})"
        )

    def fail(self, target: Target, error: str) -> None:
        self.descriptions[target.name] = target.description
        self.errors.setdefault(target.name, []).append(error)
        log(f"  {self.scenario.name} {target.name}: FAILED {error}")

    def failed(self) -> bool:
        """Whether a target failed, or a run counted errors or missed receipts."""
        return bool(self.errors) or any(
            r.get("errors") or r.get("missed")
            for target_runs in self.variants.values()
            for runs in target_runs.values()
            for r in runs
        )


def guarded(rec: Recorder, target: Target, fn: Callable[[], None]) -> None:
    try:
        fn()
    except BenchError as error:
        rec.fail(target, str(error))
    except subprocess.TimeoutExpired as error:
        rec.fail(target, f"timeout: {error}")
    except Exception as error:  # a harness bug in one target must not lose the others' runs
        rec.fail(target, f"{type(error).__name__}: {error}")


def in_run_order(targets: list[Target], run: int) -> list[Target]:
    """The targets in this run's order: forward on even runs, backward on odd ones.

    The machine's speed drifts during an invocation (another tenant, clock
    changes); alternating the order puts each target early and late alike, so a
    drift does not favour the targets that happen to come first.
    """
    return list(targets) if run % 2 == 0 else list(reversed(targets))


def interleaved(
    rec: Recorder, targets: list[Target], runs: int, measure: Callable[[Target], None]
) -> None:
    """Measure run 1 of every target, then run 2, ..., in alternating order."""
    for run in range(runs):
        for target in in_run_order(targets, run):
            guarded(rec, target, lambda: measure(target))


def measure_server_cpu(
    server: ServerProcess, fn: Callable[[], dict[str, Any]]
) -> tuple[dict[str, Any], float]:
    before = proc_cpu_s(server.pid)
    result = fn()
    server.check_alive()
    cpu = proc_cpu_s(server.pid) - before
    result["server_cpu_s"] = cpu
    return result, round(100.0 * cpu / max(result["wall_s"], 1e-9), 1)


def per_cpu_second(result: dict[str, Any]) -> float:
    """Operations per second of server CPU: robust to other load on the server core."""
    return round(result["completed_total"] / max(result["server_cpu_s"], 1e-9), 1)
