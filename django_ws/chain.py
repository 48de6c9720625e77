"""The middleware chain: ``WS_MIDDLEWARE``, then the route's own, around the lifecycle.

A middleware is built once with the next callable and called once per connection
with the handler instance (the seed README's contract), so it must keep no
per-connection state on itself. Chains are built once per handler class, on first
use, and rebuilt only when the settings change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .conf import clears_on_settings_change, get_settings

if TYPE_CHECKING:
    from .handler import WebSocketHandler

Next = Callable[["WebSocketHandler"], Awaitable[Any]]

_chains: dict[type, Next] = {}
clears_on_settings_change(_chains.clear)


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


def chain_for(handler_class: type[WebSocketHandler]) -> Next:
    """Return the chain for ``handler_class``, building it on first use."""
    chain = _chains.get(handler_class)
    if chain is None:
        settings_chain = list(get_settings().middleware)
        route_chain = list(handler_class.middleware)
        chain = build_chain(
            handler_class._run,
            settings_chain + route_chain,
            where=f"WS_MIDDLEWARE or {handler_class.__qualname__}.middleware",
        )
        _chains[handler_class] = chain
    return chain
