"""Marks that turn functions and methods into lifecycle hooks and tasks.

A marked function stays the same function for its callers (wrapt keeps its name,
signature, docstring and ``inspect.iscoroutinefunction``); the mark only says how
the handler class that holds it should run it. ``WebSocketHandler`` reads the marks
of its methods when the class is created, and the decorator DSL compiles marked
functions into such a class, so both forms share one lifecycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import wrapt
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from .decorators.route import Route

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

    def __str__(self) -> str:
        if self.kind == "on_message" and self.message_type is not None:
            return f"on_message(type={self.message_type!r})"
        if self.kind == "periodic":
            return f"periodic({self.seconds:g})"
        if self.kind == "background":
            return f"background({self.task_id!r})"
        return self.kind


def describe(function: Any) -> str:
    """Return ``module.qualname`` of ``function``, for configuration errors."""
    module = getattr(function, "__module__", None) or "?"
    return f"{module}.{getattr(function, '__qualname__', function)}"


def _call_through(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


class MarkedFunction(wrapt.FunctionWrapper):  # type: ignore[misc]
    """A function or method carrying one or more ``HookSpec`` marks.

    Metadata lives on ``_self_`` attributes: anything else set on a wrapt proxy
    would be written through to the wrapped function. ``_self_route`` is the
    route that registered the function, once ``ws_route`` has taken it.
    """

    def __init__(
        self, wrapped: Any, specs: tuple[HookSpec, ...], route: Route | None = None
    ) -> None:
        super().__init__(wrapped, _call_through)
        self._self_hook_specs = specs
        self._self_route = route


def mark(function: Any, spec: HookSpec) -> MarkedFunction:
    """Return ``function`` marked with ``spec`` (added to any marks it already has).

    A function that ``ws_route`` has already registered cannot take new marks: the
    route read its marks when it took it, so a mark above ``@ws_route`` would be
    silently ignored. The same mark again (``@on_message`` above a plain
    ``@ws_route`` function) is harmless and allowed.
    """
    if isinstance(function, MarkedFunction):
        route = function._self_route
        if route is not None:
            if spec in function._self_hook_specs:
                return function
            raise ImproperlyConfigured(
                f"@{spec} is above @ws_route({route.route!r}) on "
                f"{describe(function)}, so the route never sees it. Put @ws_route "
                "outermost (first line), with the hook decorators below it."
            )
        return MarkedFunction(unmarked(function), function._self_hook_specs + (spec,))
    return MarkedFunction(function, (spec,))


def unmarked(value: Any) -> Any:
    """Return ``value`` without its marks: the function as its author wrote it.

    Only our own wrappers are removed; a ``functools.wraps`` decorator of the
    user's stays, so it still runs (``inspect.unwrap`` would skip it).
    """
    while isinstance(value, MarkedFunction):
        value = value.__wrapped__
    return value


def marks_of(value: Any) -> tuple[HookSpec, ...]:
    """Return the marks on ``value``; an unmarked value has none."""
    if isinstance(value, MarkedFunction):
        specs: tuple[HookSpec, ...] = value._self_hook_specs
        return specs
    return ()


def route_of(value: Any) -> Route | None:
    """Return the route that registered ``value``, if any."""
    if isinstance(value, MarkedFunction):
        route: Route | None = value._self_route
        return route
    return None


def alias_marked_hooks(cls: type, hook_names: tuple[str, ...]) -> None:
    """Make a method marked ``@on_open`` (etc.) under another name ``cls``'s hook.

    So ``@on_open async def joined(self)`` works in a handler class as it does
    under ``ws_route``. Two methods for one hook is an error, not a silent pick.
    """
    for name, value in list(vars(cls).items()):
        for spec in marks_of(value):
            if spec.kind not in hook_names or spec.message_type is not None:
                continue
            if name == spec.kind:
                continue
            existing = vars(cls).get(spec.kind)
            if existing is not None:
                other = getattr(existing, "__name__", spec.kind)
                raise ImproperlyConfigured(
                    f"{describe(cls)} has two {spec.kind} hooks: {other} and {name} "
                    f"(marked @{spec}). Keep one."
                )
            setattr(cls, spec.kind, value)
