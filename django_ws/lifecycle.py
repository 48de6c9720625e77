"""The lifecycle that runs a handler: handshake, receive loop, close, error mapping.

``Lifecycle.run`` is what the ASGI application awaits for one socket:

    websocket.connect -> Origin check -> middleware chain -> open_and_serve
        open_and_serve: accept -> on_open -> receive loop -> on_close

The connection's state is one ``ConnectionState``; every change goes through
``_move``, which raises ``RuntimeError`` naming the states it expected and the one
it found. Client mistakes become close codes (``status``), never tracebacks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from threading import get_ident
from typing import TYPE_CHECKING, Any, ClassVar

from . import status
from .compile import HandlerRecord, record_for
from .exceptions import ConnectionClosed, DenyConnection, MessageDecodeError
from .handshake import refuse_handshake
from .origin import origin_allowed, origin_allowed_by_headers
from .outbox import SENT, Outbox
from .ratelimit import RateLimiter
from .state import ABORTING, CLOSED, CLOSING, CONNECTING, OPEN, REFUSED, ConnectionState
from .backpressure import with_backpressure
from .closing import CloseHandling
from .tasks import TaskMixin
from .operations import hooks as operations

if TYPE_CHECKING:
    from asgiref.typing import ASGIReceiveCallable, ASGISendCallable, WebSocketScope

    from .codecs import Codec
    from .request import WebSocketRequest

logger = logging.getLogger("django_ws")


#: Every accepted connection of this process that has not finished closing.
open_connections: set[Lifecycle] = set()


class Lifecycle(CloseHandling, TaskMixin):
    """Run one connection from handshake to close; ``WebSocketHandler`` is its API."""

    __slots__ = (
        "__dict__",
        "scope",
        "args",
        "kwargs",
        "subprotocol",
        "close_code",
        "close_reason",
        "_state",
        "_receive",
        "_asgi_send",
        "_request",
        "_groups",
        "_connection_id",
        "_loop",
        "_thread",
        "_task",
        "_outbox",
        "_record",
    )

    if TYPE_CHECKING:  # the hooks, provided by WebSocketHandler
        _request: WebSocketRequest | None

        @property
        def request(self) -> WebSocketRequest: ...
        async def on_open(self) -> None: ...
        async def on_message(self, data: Any) -> Any: ...
        async def on_close(self) -> None: ...
        async def on_error(self, error: Exception) -> None: ...
        def send(self, data: Any) -> Awaitable[None]: ...
        def close(self, code: int = ..., reason: str = ...) -> Awaitable[None]: ...
        async def _leave_all_groups(self) -> None: ...
        codec: ClassVar[Codec]
        accept_headers: ClassVar[Sequence[tuple[str, str]]]
        subprotocols: ClassVar[Sequence[str]]
        message_type_key: ClassVar[str]

    def __init__(
        self,
        scope: WebSocketScope | dict[str, Any],
        receive: ASGIReceiveCallable | Callable[[], Awaitable[Any]],
        send: ASGISendCallable | Callable[[Any], Awaitable[None]],
        *,
        args: Any = (),
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.scope: dict[str, Any] = scope  # type: ignore[assignment]
        self.args = tuple(args)
        self.kwargs: dict[str, Any] = {} if kwargs is None else kwargs
        self.subprotocol: str | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._state = CONNECTING
        if "extensions" not in scope:  # an ASGI 2.0 server: its send may never wait
            send = with_backpressure(scope, send)
        tracker = operations.tracker  # None unless metrics, live view or limits are on
        if tracker is not None:
            receive, send = tracker.attach(self, receive, send)
        self._receive: Callable[[], Awaitable[Any]] = receive  # type: ignore[assignment]
        self._asgi_send: Callable[[Any], Awaitable[None]] = send  # type: ignore[assignment]
        self._request = None
        self._groups: set[str] | None = None
        self._connection_id: str | None = None
        self._tasks = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None  # the loop's thread
        self._task: asyncio.Task[Any] | None = None
        self._record: HandlerRecord = record_for(type(self))
        self._outbox = Outbox(
            send,  # type: ignore[arg-type]
            limit=self._record.limits.max_send_queue,
            on_overflow=self._send_queue_full,
            on_lost=self._client_gone,
        )

    # State ----------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """Where this connection is in its life."""
        return self._state

    @property
    def connected(self) -> bool:
        """Whether the socket is accepted and its lifecycle not yet over."""
        return self._state in (OPEN, CLOSING, ABORTING)

    @property
    def closed(self) -> bool:
        """Whether the lifecycle is over (``on_close`` has run or is running)."""
        return self._state is CLOSED

    @property
    def serving_task(self) -> asyncio.Task[Any] | None:
        """The task running this connection's lifecycle, while it runs."""
        return self._task

    def _move(self, expected: tuple[ConnectionState, ...], new: ConnectionState, why: str) -> None:
        if self._state not in expected:
            names = " or ".join(state.name for state in expected)
            raise RuntimeError(
                f"Expected the connection to be {names} to {why}, but it is "
                f"{self._state.name}."
            )
        self._state = new

    # Handshake ------------------------------------------------------------------

    async def run(self) -> None:
        """Run this connection from handshake to close (the ASGI app awaits it)."""
        message = await self._receive()
        if message["type"] != "websocket.connect":
            return
        task = self._task = asyncio.current_task()
        operations.current_connection.set(self)  # log records name this socket
        self._loop = task.get_loop() if task is not None else asyncio.get_running_loop()
        self._thread = get_ident()
        # The handshake's steps stay in this frame rather than a coroutine of their
        # own: an open socket keeps every frame of its call chain alive.
        record = self._record
        try:
            limits = record.limits
            allowed = (
                not limits.check_origin
                or origin_allowed_by_headers(self.scope, limits.allowed_origins)
            )
            if allowed is None:  # undecided without the request (proxy settings...)
                allowed = origin_allowed(self.request, limits.allowed_origins)
            if not allowed:
                logger.warning(
                    "Refused %r: Origin %r not allowed", self, self.request.META["HTTP_ORIGIN"]
                )
                await self._refuse(403)
                return
            try:
                await record.chain(self)
            except DenyConnection as deny:
                if self._state is CONNECTING:
                    await self._refuse(deny.status)
                else:
                    logger.warning("DenyConnection raised after accept on %r: %s", self, deny)
            except ConnectionClosed:
                pass  # the client left during the handshake
            except Exception:
                logger.exception("Middleware of %r failed", self)
                if self._state is CONNECTING:
                    await self._refuse(500)
            finally:
                if self._state is CONNECTING:
                    await self._refuse(403)
        finally:
            # The outbox holds bound methods of this handler, which holds the outbox:
            # breaking that cycle frees a finished connection (and the server's
            # protocol objects it references) by reference counting, at once,
            # instead of leaving it all to the cyclic garbage collector.
            self._outbox.forget_owner()
            self._task = None
            operations.current_connection.set(None)  # a finished task keeps its context
            if operations.tracker is not None:
                operations.tracker.finished(self)

    async def _refuse(self, http_status: int) -> None:
        self._move((CONNECTING,), REFUSED, f"refuse the handshake with {http_status}")
        await refuse_handshake(self.scope, self._asgi_send, http_status)

    async def _accept(self) -> None:
        message: dict[str, Any] = {"type": "websocket.accept"}
        offered = self.scope.get("subprotocols") or ()
        for name in offered:
            if name in self.subprotocols:
                self.subprotocol = message["subprotocol"] = name
                break
        if self.accept_headers:
            message["headers"] = [
                (name.encode("latin-1"), value.encode("latin-1"))
                for name, value in self.accept_headers
            ]
        self._move((CONNECTING,), OPEN, "send 'websocket.accept'")
        try:
            await self._asgi_send(message)
        except Exception as error:  # the client left before the accept went out
            logger.debug("Accept for %r not sent: %r", self, error)
            self._state = CLOSED
            self.close_code = status.WS_1006_ABNORMAL_CLOSURE
            raise ConnectionClosed(status.WS_1006_ABNORMAL_CLOSURE) from None

    # Serving --------------------------------------------------------------------

    async def open_and_serve(self) -> None:
        """Accept, run the hooks until the socket closes, then clean up.

        The innermost link of the middleware chain. A middleware that closed the
        socket before calling it refused the handshake: nothing is accepted.
        """
        if self._state is REFUSED:
            return
        if operations.tracker is not None:  # connection limits: DenyConnection(429)
            await operations.tracker.admit(self)
        await self._accept()
        open_connections.add(self)
        hooks = self._record.hooks
        try:
            # Hooks left as the no-op defaults are not called: a connection that only
            # answers messages pays for no extra coroutine at open and close.
            if not hooks.runs_on_open or await self._call_hook(self.on_open):
                if hooks.tasks and self._state is OPEN:  # on_open may have closed it
                    self.start_declared_tasks(hooks.tasks)
                await self._receive_loop()
            else:
                await self._drain_until_disconnect()
        except asyncio.CancelledError:
            if self._state is not ABORTING:
                # The server cancels its connections' tasks as it shuts down
                # (hypercorn at its graceful timeout): say so with 1001 before it
                # closes the socket its own way (1011, or no close frame at all).
                self.close(status.WS_1001_GOING_AWAY, "Server shutting down")
                raise
            self._absorb_abort()
        finally:
            aborting = self._state is ABORTING
            self._state = CLOSED
            if self._tasks:
                await self._cancel_tasks()
            if self._groups:
                await self._leave_all_groups()
            if hooks.runs_on_close:
                await self._call_hook(self.on_close)
            open_connections.discard(self)
            if aborting:
                await self._send_abort_close()

    async def _call_hook(self, hook: Callable[..., Awaitable[Any]], *args: Any) -> bool:
        try:
            await hook(*args)
        except ConnectionClosed:
            return False
        except Exception as error:
            await self._close_for_error(error)
            return False
        return True

    async def _receive_loop(self) -> None:
        receive = self._receive
        codec = self.codec  # called through it: a bound method kept here costs memory
        limits = self._record.limits
        max_size = limits.max_message_size
        limiter = RateLimiter(limits.max_messages_per_second) if limits.max_messages_per_second else None
        typed = self._record.hooks.typed
        type_key = self.message_type_key
        message: Any = None
        data: Any = None
        result: Any = None
        text: str | None = None
        sent: Any = None
        while True:
            # What the last message left in this frame (the server's event, its text,
            # the decoded value, the reply and its send) would otherwise stay alive as
            # long as the socket idles: most sockets idle far longer than they work.
            message = data = result = text = sent = None
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                if self._state is not OPEN:
                    continue
                try:
                    text = message.get("text")
                    if text is not None:
                        if len(text) * 4 > max_size and len(text.encode()) > max_size:
                            await self._too_big(len(text.encode()), max_size)
                            continue
                        data = codec.decode(text)
                    else:
                        data = message.get("bytes") or b""
                        if len(data) > max_size:
                            await self._too_big(len(data), max_size)
                            continue
                    if limiter is not None and not limiter.allow():
                        self.close(status.WS_1008_POLICY_VIOLATION, "Message rate limit exceeded")
                        continue
                    if typed and type(data) is dict and data.get(type_key) in typed:
                        result = await typed[data[type_key]](self, data)
                    else:
                        result = await self.on_message(data)
                    if result is not None:
                        sent = self.send(result)
                        if sent is not SENT:  # queued behind back-pressure, or dropped
                            await sent
                except ConnectionClosed:
                    pass
                except MessageDecodeError as error:
                    await self._close_for_bad_message(error)
                except Exception as error:
                    await self._close_for_error(error)
            elif kind == "websocket.disconnect":
                self._client_closed(message)
                return

    async def _drain_until_disconnect(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                self._client_closed(message)
                return
