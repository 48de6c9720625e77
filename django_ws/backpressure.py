"""Back-pressure where the server's ``send`` never waits (daphne).

uvicorn, hypercorn and granian make ``send`` wait while a client is not reading,
and the outbox bounds what queues behind it (``WS_MAX_SEND_QUEUE``, then 1008).
daphne's ``send`` returns at once and Twisted buffers whatever it is given, so a
client that stops reading would grow the server without bound and the cut-off
could never fire. Twisted says when a transport's write buffer is full through
its public producer API (``IPushProducer``): django-ws registers a producer on the
connection's transport and makes its ``send`` wait while Twisted has paused it.
The producer that was registered there (the HTTP channel the socket was upgraded
from) is kept in the chain: every pause, resume and stop still reaches it.

How the transport is found: only a scope without ``extensions`` (an ASGI 2.0
server such as daphne) is looked at, and only a ``send`` that is a
``functools.partial`` over a protocol whose ``transport`` has Twisted's
``registerProducer`` (daphne hands the application
``partial(server.handle_reply, protocol)``). Anything else is left as it is, so a
server of another shape keeps its own behaviour.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

logger = logging.getLogger("django_ws")

Send = Callable[[Any], Awaitable[None]]


class PausedWrites:
    """A Twisted push producer that records whether writing is paused.

    ``previous`` is the producer it replaced on the transport; it is told
    everything, as if it were still registered.
    """

    __slots__ = ("_writable", "_previous")

    def __init__(self, previous: Any = None) -> None:
        self._writable: asyncio.Event | None = None  # None while not paused
        self._previous = previous

    def pauseProducing(self) -> None:  # noqa: N802 - Twisted's interface
        if self._writable is None:
            self._writable = asyncio.Event()
        if self._previous is not None:
            self._previous.pauseProducing()

    def resumeProducing(self) -> None:  # noqa: N802
        writable, self._writable = self._writable, None
        if writable is not None:
            writable.set()
        if self._previous is not None:
            self._previous.resumeProducing()

    def stopProducing(self) -> None:  # noqa: N802 - the connection is gone
        writable, self._writable = self._writable, None
        if writable is not None:
            writable.set()
        if self._previous is not None:
            self._previous.stopProducing()

    async def wait_writable(self) -> None:
        """Return once the transport takes writes again."""
        writable = self._writable
        if writable is not None:
            await writable.wait()


def with_backpressure(scope: Mapping[str, Any], send: Send) -> Send:
    """Return ``send``, made to wait while the transport is full where it would not."""
    if "extensions" in scope or not isinstance(send, functools.partial) or not send.args:
        return send
    transport: Any = getattr(send.args[0], "transport", None)
    if not hasattr(transport, "registerProducer"):
        return send
    previous = getattr(transport, "producer", None)
    if previous is not None and not getattr(transport, "streamingProducer", False):
        return send  # a pull producer cannot be chained behind a push one
    producer = PausedWrites(previous)
    try:
        if previous is not None:
            transport.unregisterProducer()
        transport.registerProducer(producer, True)
    except Exception as error:  # the transport is closing, or not Twisted's
        logger.debug("No back-pressure producer for %r: %r", send, error)
        return send

    async def send_when_writable(message: Any) -> None:
        await send(message)
        await producer.wait_writable()

    return send_when_writable
