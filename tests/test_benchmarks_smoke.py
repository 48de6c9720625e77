"""The benchmark suite still runs: a smoke pass over every scenario, no timings asserted.

It builds the benchmark's own environment (``benchmarks/setup.sh``: Channels,
Starlette, django-ws 1.0.2 from PyPI, the C load generator) and runs every scenario
with tiny counts against the raw floor and both django-ws forms (and PostgresBackend
on the runner's private PostgreSQL, issue 15). The figures are not
checked (speed is measured in ``benchmarks/run.py``, never in a test); that each
scenario produced a row without load-generator errors is.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH_PYTHON = ROOT / "benchmarks" / ".venv" / "bin" / "python"

pytestmark = pytest.mark.bench_smoke


def results_of(out: Path, scenario: str) -> dict[str, Any]:
    """One scenario's section of the run's ``benchmarks.json``."""
    section: dict[str, Any] = json.loads((out / "benchmarks.json").read_text())[
        "scenarios"
    ][scenario]
    return section


# Its own subprocess timeouts (setup and run, 900 s each) bound it, not the
# suite's 120 s per test: every scenario's smoke pass takes minutes.
@pytest.mark.timeout(1860)
def test_every_benchmark_scenario_runs_in_smoke_mode(tmp_path: Path) -> None:
    setup = subprocess.run(
        ["bash", "benchmarks/setup.sh"],
        cwd=ROOT,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert setup.returncode == 0, setup.stdout[-3000:] + setup.stderr[-3000:]

    published = ROOT / "docs" / "benchmarks.md"
    before = hashlib.sha256(published.read_bytes()).hexdigest()
    run = subprocess.run(
        [
            str(BENCH_PYTHON),
            "benchmarks/run.py",
            "--smoke",
            "--scenario",
            "all",
            "--targets",
            "raw,djangows,djangows-dsl,socketio,djangows-postgres",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = (tmp_path / "benchmarks.md").read_text()
    for heading in ("## Ping-pong", "## Connection churn", "## Idle memory", "## Broadcast"):
        assert heading in report
    for heading in ("## Broadcast to a group with history", "## Recovering missed"):
        assert heading in report
    # The independent harness's method: a browser's handshake, one echo before idling.
    for heading in (
        "## Connection churn, browser handshake",
        "## Idle memory per connection after one echo",
    ):
        assert heading in report
    # Issue 18's scale scenarios, python-socketio as the peer with rooms and Redis.
    for heading in (
        "## Many idle connections",
        "## Sustained broadcast in one",
        "## Sustained broadcast across 4",
    ):
        assert heading in report
    # Issue 15: PostgresBackend across 2 processes (and from sync code) on the
    # runner's private PostgreSQL, beside one Redis and both floors; a missing
    # PostgreSQL fails the run (its targets fail or are listed as not run).
    assert "## Broadcast across 2 processes through PostgreSQL" in report
    postgres = results_of(tmp_path, "broadcast-postgres")
    assert postgres["errors"] == {} and postgres["skipped"] == {}, postgres
    (measured,) = postgres["variants"].values()
    assert set(measured) == {"raw", "raw-postgres", "djangows", "djangows-postgres"}
    assert [run["notify_per_broadcast"] for run in measured["djangows-postgres"]] == [1]
    assert [run["notify_per_broadcast"] for run in measured["raw-postgres"]] == [1]
    sync = results_of(tmp_path, "sync-broadcast")
    assert {"raw-postgres", "djangows-postgres"} <= set(sync["variants"]["from sync code"])
    assert "`socketio`" in report
    assert "`djangows`" in report and "`djangows-dsl`" in report
    assert "`djangows-history`" in report
    assert hashlib.sha256(published.read_bytes()).hexdigest() == before
    results = json.loads((tmp_path / "benchmarks.json").read_text())
    assert results["meta"]["smoke"] is True
