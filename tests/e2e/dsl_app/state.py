"""What the hooks in ``ws.py`` did, kept in the server process for ``debug/state``."""

from __future__ import annotations

from typing import Any

#: ``[kind, detail]`` pairs in the order they happened.
events: list[list[Any]] = []


def record(kind: str, detail: Any) -> None:
    events.append([kind, detail])
