"""The middleware chain: ``WS_MIDDLEWARE``, then the route's own, around the lifecycle.

A middleware is built once with the next callable and called once per connection
with the handler instance (the seed README's contract), so it must keep no
per-connection state on itself. ``django_ws.compile`` builds each handler class's
chain once, on first use, and again only when the settings change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

#: A link of the chain: called with the connection (a ``WebSocketHandler``).
Next = Callable[[Any], Awaitable[Any]]


def load_middleware(entry: Any, *, where: str) -> Callable[[Next], Next]:
    """Return the middleware factory named by ``entry`` (a dotted path or a class)."""
    if isinstance(entry, str):
        try:
            entry = import_string(entry)
        except ImportError as error:
            raise ImproperlyConfigured(
                f"{where} names {entry!r}, which cannot be imported ({error}). "
                "Fix the dotted path or remove the entry."
            ) from error
    if not callable(entry):
        raise ImproperlyConfigured(
            f"{where} entry {entry!r} is not callable: a middleware is a class (or "
            "factory) taking the next callable, whose instances are called with the "
            "connection."
        )
    factory: Callable[[Next], Next] = entry
    return factory


def build_chain(inner: Next, middleware: Iterable[Any], *, where: str) -> Next:
    """Wrap ``inner`` so that the first middleware listed runs outermost."""
    factories = [load_middleware(entry, where=where) for entry in middleware]
    chain = inner
    for factory in reversed(factories):
        chain = factory(chain)
    return chain
