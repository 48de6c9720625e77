"""What every part of the runner shares: paths, cores, the error, progress output."""

from __future__ import annotations

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


def log(message: str) -> None:
    print(message, flush=True)
