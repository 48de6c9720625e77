"""The four calls the lifecycle makes into the operations features.

``tracker`` is ``None`` when metrics, the live view and the connection limits are
all off: a connection then pays one global lookup per call site, nothing per
message. Until the settings are first read it is a resolver that reads them and
puts the real answer in its place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol

from ..conf import clears_on_settings_change

__all__ = [
    "ConnectionTracker",
    "check",
    "current_connection",
    "provide_tracker",
    "resolve",
    "shutdown",
    "startup",
    "tracker",
]

#: A connection (``Lifecycle``); typed loosely so that this module, which the
#: lifecycle imports, imports nothing that imports the lifecycle.
Lifecycle = Any

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]

#: The connection whose task is running: every django-ws log record carries its
#: id, route and user (``log_context.ConnectionLogFilter``).
current_connection: ContextVar[Lifecycle | None] = ContextVar(
    "django_ws_connection", default=None
)


class ConnectionTracker(Protocol):
    """What the lifecycle calls; ``tracker.Tracker`` implements it."""

    def attach(self, ws: Lifecycle, receive: Receive, send: Send) -> tuple[Receive, Send]:
        """Return ``receive`` and ``send`` wrapped to count what passes."""

    async def admit(self, ws: Lifecycle) -> None:
        """Raise ``DenyConnection(429)`` when a connection limit is reached."""

    def finished(self, ws: Lifecycle) -> None:
        """Account for the end of ``ws``'s lifecycle, however it ended."""

    def refused_unrouted(self, status: int) -> None:
        """Count a handshake refused before any handler (no route)."""


class _Resolver:
    """Stands for the tracker until the settings are read, then steps aside."""

    def attach(self, ws: Lifecycle, receive: Receive, send: Send) -> tuple[Receive, Send]:
        real = resolve()
        return (receive, send) if real is None else real.attach(ws, receive, send)

    async def admit(self, ws: Lifecycle) -> None:
        real = resolve()
        if real is not None:
            await real.admit(ws)

    def finished(self, ws: Lifecycle) -> None:
        real = resolve()
        if real is not None:
            real.finished(ws)

    def refused_unrouted(self, status: int) -> None:
        real = resolve()
        if real is not None:
            real.refused_unrouted(status)


_RESOLVER = _Resolver()

#: What the lifecycle calls, or ``None`` when every operations feature is off.
tracker: ConnectionTracker | None = _RESOLVER


#: Makes the tracker from the settings, or returns ``None`` when all is off;
#: ``provide_tracker`` sets it (the application and the app config do).
_factory: Callable[[], ConnectionTracker | None] | None = None


def provide_tracker(factory: Callable[[], ConnectionTracker | None]) -> None:
    """Say how to make the tracker (``operations.tracker.make_tracker``)."""
    global _factory
    _factory = factory


def resolve() -> ConnectionTracker | None:
    """Set ``tracker`` to the real tracker, or ``None`` when every feature is off."""
    global tracker
    tracker = _factory() if _factory is not None else None
    return tracker


async def startup() -> None:
    """Start the tracker's background work (the application's lifespan startup)."""
    startup = getattr(tracker, "startup", None)
    if startup is not None:
        await startup()


async def shutdown() -> None:
    """Stop the tracker's background work (the application's lifespan shutdown)."""
    shutdown = getattr(tracker, "shutdown", None)
    if shutdown is not None:
        await shutdown()


def check() -> None:
    """Validate the operations settings now (``ImproperlyConfigured`` on mistakes)."""
    if tracker is _RESOLVER:
        resolve()


@clears_on_settings_change
def _forget_tracker() -> None:
    global tracker
    if tracker is not None and tracker is not _RESOLVER:
        stop = getattr(tracker, "stop", None)
        if stop is not None:
            stop()
    tracker = _RESOLVER
