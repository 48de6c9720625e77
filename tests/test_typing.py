"""The package type-checks: its hints are part of the public API (``py.typed``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_django_ws_is_mypy_clean() -> None:
    result = subprocess.run(
        # pyproject.toml's [tool.mypy]: --strict, with django-stubs' plugin.
        [sys.executable, "-m", "mypy", "django_ws"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("Success: no issues found")
