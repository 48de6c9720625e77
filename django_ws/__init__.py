"""django-ws: WebSockets for Django with a small handler class or decorated functions."""

from __future__ import annotations

__version__ = "2.0.0.dev0"

from .application import WebSocketApplication, get_websocket_application
from .broadcast import (
    broadcast,
    broadcast_on_commit,
    broadcast_sync,
    position,
    position_sync,
    presence,
)
from .decorators import (
    background,
    on_close,
    on_error,
    on_message,
    on_open,
    periodic,
    use_middleware,
    ws_route,
)
from .exceptions import (
    BroadcastError,
    ConnectionClosed,
    DenyConnection,
    MessageDecodeError,
)
from .handler import WebSocketHandler
from .routing import reverse
from .tasks import TASK_DUPLICATE_STARTED, TASK_WS_CLOSED

__all__ = [
    "TASK_DUPLICATE_STARTED",
    "TASK_WS_CLOSED",
    "BroadcastError",
    "ConnectionClosed",
    "DenyConnection",
    "MessageDecodeError",
    "WebSocketApplication",
    "WebSocketHandler",
    "__version__",
    "background",
    "broadcast",
    "broadcast_on_commit",
    "broadcast_sync",
    "get_websocket_application",
    "on_close",
    "on_error",
    "on_message",
    "on_open",
    "periodic",
    "position",
    "position_sync",
    "presence",
    "reverse",
    "use_middleware",
    "ws_route",
]
