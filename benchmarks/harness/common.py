"""What every part of the runner shares: paths, cores, errors, subprocesses, output."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent  # benchmarks/
REPO = HERE.parent
APPS = HERE / "apps"
LOADGEN_SRC = HERE / "loadgen" / "loadgen.c"
LOADGEN = HERE / "loadgen" / "loadgen"
SELFTEST = HERE / "loadgen" / "selftest.py"
VENV = HERE / ".venv"
VENV_102 = HERE / ".venv-102"
SERVER_CPU = "0"
LOADGEN_CPU = "1"
HOST = "127.0.0.1"


class BenchError(Exception):
    """A target could not be measured (server did not start, loadgen failed...)."""


def capture(
    cmd: list[str],
    timeout: float,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` to the end and return its output as text, whatever its exit code."""
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
        env=env,
    )


def log(message: str) -> None:
    print(message, flush=True)
