"""Decorators that only mark a function or method as a hook.

They change nothing about how the function runs when called directly; the
``WebSocketHandler`` class that holds a marked method, or the route that
``@ws_route`` compiles, reads the mark.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from django.core.exceptions import ImproperlyConfigured

from ..hooks import HookSpec, mark

F = TypeVar("F", bound=Callable[..., Any])


def _describe(function: Any) -> str:
    module = getattr(function, "__module__", "?")
    return f"{module}.{getattr(function, '__qualname__', function)!r}"


def on_open(function: F) -> F:
    """Mark ``function(ws, **url_kwargs)`` to run once the socket is accepted."""
    return mark(function, HookSpec("on_open"))  # type: ignore[return-value]


def on_close(function: F) -> F:
    """Mark ``function(ws, **url_kwargs)`` to run once the socket has closed."""
    return mark(function, HookSpec("on_close"))  # type: ignore[return-value]


def on_error(function: F) -> F:
    """Mark ``function(ws, error, **url_kwargs)`` to observe a hook's exception."""
    return mark(function, HookSpec("on_error"))  # type: ignore[return-value]


@overload
def on_message(function: F, /) -> F: ...
@overload
def on_message(*, type: str | None = None) -> Callable[[F], F]: ...


def on_message(function: Any = None, /, *, type: str | None = None) -> Any:
    """Mark ``function(ws, data, **url_kwargs)`` to handle messages.

    With ``type``, only JSON objects whose type key (``"type"``) has that value.
    Works bare (``@on_message``) or configured (``@on_message(type="chat")``).
    """
    if type is not None and not isinstance(type, str):
        raise ImproperlyConfigured(f"on_message(type=...) takes a string, got {type!r}.")

    def decorate(function: F) -> F:
        return mark(function, HookSpec("on_message", message_type=type))  # type: ignore[return-value]

    return decorate if function is None else decorate(function)


def periodic(seconds: float, *, immediate: bool = False) -> Callable[[F], F]:
    """Mark ``function(ws, **url_kwargs)`` to run every ``seconds`` while open.

    Drift-free and never overlapping itself; the first run is one period after
    open, or at once with ``immediate=True``. A non-None result is sent.
    """
    if callable(seconds):
        raise ImproperlyConfigured(
            f"periodic needs a period: write @periodic(5) above {_describe(seconds)}, "
            "not a bare @periodic."
        )
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
        raise ImproperlyConfigured(
            f"periodic(seconds) needs a positive number of seconds, got {seconds!r}."
        )

    def decorate(function: F) -> F:
        return mark(function, HookSpec("periodic", seconds=float(seconds), immediate=immediate))  # type: ignore[return-value]

    return decorate


def background(task_id: str) -> Callable[[F], F]:
    """Mark ``function(ws, **url_kwargs)`` to run as task ``task_id`` after open.

    It runs through ``start_task`` (same duplicate and cancel rules); an async
    generator streams each yielded value through ``send``.
    """
    if callable(task_id) or not isinstance(task_id, str) or not task_id:
        where = f" above {_describe(task_id)}" if callable(task_id) else ""
        raise ImproperlyConfigured(
            f"background needs a task id: write @background('feed'){where}, "
            f"got {task_id!r}."
        )

    def decorate(function: F) -> F:
        return mark(function, HookSpec("background", task_id=task_id))  # type: ignore[return-value]

    return decorate


def use_middleware(*middleware: Any) -> Callable[[Any], Any]:
    """Add route middleware to a handler class (innermost, after the route's own)."""

    def decorate(handler_class: Any) -> Any:
        from ..handler import WebSocketHandler

        if not (isinstance(handler_class, type) and issubclass(handler_class, WebSocketHandler)):
            raise ImproperlyConfigured(
                f"use_middleware decorates WebSocketHandler subclasses; "
                f"{_describe(handler_class)} is not one. For a function route pass "
                "middleware=[...] to ws_route."
            )
        handler_class.middleware = (*handler_class.middleware, *middleware)
        return handler_class

    return decorate
