"""The decorator DSL: function-style handlers that compile onto ``WebSocketHandler``.

``ws_route`` registers a route; ``on_open``, ``on_message``, ``on_close``,
``on_error``, ``periodic`` and ``background`` mark functions or methods as hooks;
``use_middleware`` adds route middleware to a handler class.
"""

from __future__ import annotations

from .hooks import (
    background,
    on_close,
    on_error,
    on_message,
    on_open,
    periodic,
    use_middleware,
)
from .registry import RouteRegistry, routes
from .route import Route, ws_route

__all__ = [
    "Route",
    "RouteRegistry",
    "background",
    "on_close",
    "on_error",
    "on_message",
    "on_open",
    "periodic",
    "routes",
    "use_middleware",
    "ws_route",
]
