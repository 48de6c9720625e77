"""Exceptions that users of django-ws raise or catch."""

from __future__ import annotations


class DenyConnection(Exception):
    """Refuse the handshake with an HTTP status (403 unless told otherwise).

    Raise it from a middleware before it calls the next one (before accept);
    ``on_open`` then never runs.
    """

    def __init__(self, status: int = 403, reason: str = "") -> None:
        super().__init__(reason or f"WebSocket connection denied with HTTP {status}")
        self.status = status
        self.reason = reason


class MessageDecodeError(ValueError):
    """A text frame that the handler's codec cannot decode (invalid JSON by default).

    It is a client's mistake: ``on_error`` receives it, the socket closes with 1007
    and it is logged at WARNING without a traceback.
    """


class ConnectionClosed(Exception):
    """Raised by an awaited ``send`` once the socket is closed.

    The lifecycle treats it as the client leaving, never as a server error, so a
    client vanishing mid-send leaves nothing in the log.
    """

    def __init__(self, code: int | None = None) -> None:
        super().__init__(f"WebSocket is closed (code {code})")
        self.code = code


class BroadcastError(Exception):
    """The broadcast backend could not deliver within its bounded time (Redis down)."""
