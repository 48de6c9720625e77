"""Decorators that only mark a function or method as a hook.

They change nothing about how the function runs when called directly; the
``WebSocketHandler`` class that holds a marked method, or the route that
``@ws_route`` compiles, reads the mark. Options are checked when the decorator
is applied, so a mistake fails at import and the error names the function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeGuard, TypeVar, overload

from django.core.exceptions import ImproperlyConfigured

from ..handler import WebSocketHandler
from ..marks import HookKind, HookSpec, describe, mark

F = TypeVar("F", bound=Callable[..., Any])

_MISSING: Any = object()


def on_open(function: F) -> F:
    """Mark ``function(ws, **url_kwargs)`` to run once the socket is accepted."""
    return mark(function, HookSpec(HookKind.ON_OPEN))  # type: ignore[return-value]


def on_close(function: F) -> F:
    """Mark ``function(ws, **url_kwargs)`` to run once the socket has closed."""
    return mark(function, HookSpec(HookKind.ON_CLOSE))  # type: ignore[return-value]


def on_error(function: F) -> F:
    """Mark ``function(ws, error, **url_kwargs)`` to observe a hook's exception."""
    return mark(function, HookSpec(HookKind.ON_ERROR))  # type: ignore[return-value]


def message_spec(type: Any, function: Any) -> HookSpec:
    """Return the ``on_message`` mark for ``type``; errors name ``function``."""
    if type is not None and (not isinstance(type, str) or not type):
        raise ImproperlyConfigured(
            f"on_message(type=...) on {describe(function)} needs a non-empty string, "
            f"got {type!r}. Write @on_message(type='chat')."
        )
    return HookSpec(HookKind.ON_MESSAGE, message_type=type)


@overload
def on_message(function: F, /) -> F: ...
@overload
def on_message(*, type: str | None = None) -> Callable[[F], F]: ...


def on_message(function: Any = None, /, *, type: str | None = None) -> Any:
    """Mark ``function(ws, data, **url_kwargs)`` to handle messages.

    With ``type``, only JSON objects whose type key (``"type"``, see
    ``WebSocketHandler.message_type_key``) has that value. Works bare
    (``@on_message``) or configured (``@on_message(type="chat")``).
    """

    def decorate(function: F) -> F:
        return mark(function, message_spec(type, function))  # type: ignore[return-value]

    return decorate if function is None else decorate(function)


def periodic_spec(seconds: Any, immediate: Any, function: Any) -> HookSpec:
    """Return the ``periodic`` mark, checked, for errors about ``function``."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, (int, float))
        or not 0 < seconds < math.inf
    ):
        raise ImproperlyConfigured(
            f"periodic(seconds) on {describe(function)} needs a positive number of "
            f"seconds, got {seconds!r}. Write @periodic(5) for every five seconds."
        )
    if not isinstance(immediate, bool):
        raise ImproperlyConfigured(
            f"periodic(immediate=...) on {describe(function)} takes True or False, "
            f"got {immediate!r}."
        )
    return HookSpec(HookKind.PERIODIC, seconds=float(seconds), immediate=immediate)


def periodic(seconds: float = _MISSING, *, immediate: bool = False) -> Callable[[F], F]:
    """Mark ``function(ws, **url_kwargs)`` to run every ``seconds`` while open.

    Drift-free and never overlapping itself; the first run is one period after
    open, or at once with ``immediate=True``. A non-None result is sent; a run
    that raises goes to ``on_task_error`` and the schedule goes on.
    """
    if callable(seconds):
        raise ImproperlyConfigured(
            f"periodic needs a period: write @periodic(5) above {describe(seconds)}, "
            "not a bare @periodic."
        )

    def decorate(function: F) -> F:
        spec = periodic_spec(
            None if seconds is _MISSING else seconds, immediate, function
        )
        return mark(function, spec)  # type: ignore[return-value]

    return decorate


def background_spec(task_id: Any, function: Any) -> HookSpec:
    """Return the ``background`` mark, checked, for errors about ``function``."""
    if not isinstance(task_id, str) or not task_id:
        got = "nothing" if task_id is None else repr(task_id)
        raise ImproperlyConfigured(
            f"background on {describe(function)} needs a task id: write "
            f"@background('feed'), got {got}."
        )
    return HookSpec(HookKind.BACKGROUND, task_id=task_id)


def background(task_id: str = _MISSING) -> Callable[[F], F]:
    """Mark ``function(ws, **url_kwargs)`` to run as task ``task_id`` after open.

    It runs through ``start_task`` (same duplicate and cancel rules); an async
    generator streams each yielded value through ``send``.
    """
    if callable(task_id):
        raise ImproperlyConfigured(
            f"background needs a task id: write @background('feed') above "
            f"{describe(task_id)}, not a bare @background."
        )

    def decorate(function: F) -> F:
        spec = background_spec(None if task_id is _MISSING else task_id, function)
        return mark(function, spec)  # type: ignore[return-value]

    return decorate


def use_middleware(*middleware: Any) -> Callable[[Any], Any]:
    """Add route middleware to a handler class (innermost, after the route's own)."""
    if (
        len(middleware) == 1
        and isinstance(middleware[0], type)
        and _is_handler(middleware[0])
    ):
        raise ImproperlyConfigured(
            f"use_middleware needs the middleware to add: write "
            f"@use_middleware(MyMiddleware) above {describe(middleware[0])}, not a "
            "bare @use_middleware."
        )

    def decorate(handler_class: Any) -> Any:
        if not (isinstance(handler_class, type) and _is_handler(handler_class)):
            raise ImproperlyConfigured(
                f"use_middleware decorates WebSocketHandler subclasses; "
                f"{describe(handler_class)} is not one. For a function route pass "
                "middleware=[...] to ws_route."
            )
        handler_class.middleware = (*handler_class.middleware, *middleware)
        return handler_class

    return decorate


def _is_handler(value: type) -> TypeGuard[type[WebSocketHandler]]:
    return issubclass(value, WebSocketHandler)
