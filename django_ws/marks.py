"""Marks: what a hook decorator records on a function or method, and nothing else.

A marked function stays the same function for its callers (wrapt keeps its name,
signature, docstring and ``inspect.iscoroutinefunction``); the mark only says how
the handler class that holds it should run it. ``django_ws.compile`` reads the
marks of a class once, when the class is created; the decorator DSL builds such a
class from its route's hooks, so both forms share one reading and one lifecycle.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

import wrapt
from django.core.exceptions import ImproperlyConfigured


class Route(Protocol):
    """What a mark knows of the ``ws_route`` that took its function."""

    route: str

class HookKind(enum.Enum):
    """The kinds of hook a mark can name; the value is the decorator's name."""

    ON_OPEN = "on_open"
    ON_MESSAGE = "on_message"
    ON_CLOSE = "on_close"
    ON_ERROR = "on_error"
    PERIODIC = "periodic"
    BACKGROUND = "background"

    @property
    def is_task(self) -> bool:
        """Whether hooks of this kind run as tasks started after open."""
        return self in (HookKind.PERIODIC, HookKind.BACKGROUND)


#: The lifecycle hooks a handler class has one method each of.
LIFECYCLE_HOOKS = (HookKind.ON_OPEN, HookKind.ON_MESSAGE, HookKind.ON_CLOSE, HookKind.ON_ERROR)

#: How to tell two hooks of one kind apart, for the "two hooks" error.
_TWO_HOOKS_FIX = {
    HookKind.ON_MESSAGE: ", or give them different message types with @on_message(type=...).",
    HookKind.BACKGROUND: ", or give them different task ids.",
}


@dataclass(frozen=True)
class HookSpec:
    """What a mark says: the hook kind and its options."""

    kind: HookKind
    message_type: str | None = None  # on_message(type=...)
    seconds: float | None = None  # periodic
    immediate: bool = False  # periodic
    task_id: str | None = None  # background

    def __str__(self) -> str:
        if self.kind is HookKind.ON_MESSAGE and self.message_type is not None:
            return f"on_message(type={self.message_type!r})"
        if self.kind is HookKind.PERIODIC:
            return f"periodic({self.seconds:g})"
        if self.kind is HookKind.BACKGROUND:
            return f"background({self.task_id!r})"
        name: str = self.kind.value
        return name

    def same_slot(self, other: HookSpec) -> bool:
        """Tell whether two hooks would fill one place (any number of periodic may)."""
        return self.kind is not HookKind.PERIODIC and (
            self.kind,
            self.message_type,
            self.task_id,
        ) == (other.kind, other.message_type, other.task_id)


def two_hooks_error(owner: str, spec: HookSpec, first: str, second: str) -> ImproperlyConfigured:
    """Return the error for two hooks in one place; both handler forms raise it."""
    return ImproperlyConfigured(
        f"{owner} has two {spec} hooks: {first} and {second}. "
        f"Keep one{_TWO_HOOKS_FIX.get(spec.kind, '.')}"
    )


def describe(function: Any) -> str:
    """Return ``module.qualname`` of ``function``, for configuration errors."""
    module = getattr(function, "__module__", None) or "?"
    return f"{module}.{getattr(function, '__qualname__', function)}"


def _call_through(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
    return wrapped(*args, **kwargs)


class MarkedFunction(wrapt.FunctionWrapper):  # type: ignore[misc,type-arg,unused-ignore]
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
