"""The package type-checks: its hints are part of the public API (``py.typed``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_django_ws_is_mypy_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "django_ws", "--ignore-missing-imports"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found")
