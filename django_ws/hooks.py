"""Marks that turn functions and methods into lifecycle hooks and tasks.

A marked function stays the same function for its callers (wrapt keeps its name,
signature, docstring and ``inspect.iscoroutinefunction``); the mark only says how
the handler class that holds it should run it. ``WebSocketHandler`` reads the marks
of its methods when the class is created, and the decorator DSL compiles marked
functions into such a class, so both forms share one lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import wrapt

#: The kinds of hook a mark can name.
HOOK_KINDS = ("on_open", "on_message", "on_close", "on_error", "periodic", "background")


@dataclass(frozen=True)
class HookSpec:
    """What a mark says: the hook kind and its options."""

    kind: str
    message_type: str | None = None  # on_message(type=...)
    seconds: float | None = None  # periodic
    immediate: bool = False  # periodic
    task_id: str | None = None  # background
    options: dict[str, Any] = field(default_factory=dict)


def _call_through(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


class MarkedFunction(wrapt.FunctionWrapper):  # type: ignore[misc]
    """A function or method carrying one or more ``HookSpec`` marks."""

    def __init__(self, wrapped: Any, specs: tuple[HookSpec, ...]) -> None:
        super().__init__(wrapped, _call_through)
        self._self_hook_specs = specs


def mark(function: Any, spec: HookSpec) -> MarkedFunction:
    """Return ``function`` marked with ``spec`` (added to any marks it already has)."""
    if isinstance(function, MarkedFunction):
        return MarkedFunction(function.__wrapped__, function._self_hook_specs + (spec,))
    return MarkedFunction(function, (spec,))


def marks_of(value: Any) -> tuple[HookSpec, ...]:
    """Return the marks on ``value``; an unmarked value has none."""
    if isinstance(value, MarkedFunction):
        specs: tuple[HookSpec, ...] = value._self_hook_specs
        return specs
    return ()
