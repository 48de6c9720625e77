"""``WebSocketHandler``: the API a user subclasses, or the DSL compiles into.

Hooks, ``send``, ``close``, groups and the handshake's request live here; the
lifecycle that calls them is ``django_ws.lifecycle.Lifecycle``, and what a class
declares is compiled once by ``django_ws.compile``. Broadcast backends and
middleware use only the public members below (``connection_id``,
``presence_user``, ``send_event``, ``groups``, ``request``, ``has_request``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from threading import get_ident
from typing import Any, ClassVar

from . import status
from .broadcast.protocol import parse_since
from .codecs import Codec, JSONCodec
from .compile import DeclaredHook, HookTable, compile_hooks
from .connection_ids import new_connection_id
from .lifecycle import Lifecycle, open_connections
from .state import CLOSING, CONNECTING, OPEN, REFUSED
from .outbox import SENT
from .request import WebSocketRequest

__all__ = ["WebSocketHandler", "open_connections"]

logger = logging.getLogger("django_ws")


class WebSocketHandler(Lifecycle):
    """A WebSocket connection: subclass it and override the ``on_*`` hooks.

    One instance serves one connection. ``self.request`` is a Django request for the
    handshake, ``self.args`` / ``self.kwargs`` hold the URL's arguments, and
    ``send`` works whether or not it is awaited.
    """

    #: Decodes text frames and encodes what ``send`` is given.
    codec: ClassVar[Codec] = JSONCodec()
    #: Subprotocols this handler speaks, chosen in the client's order of preference.
    subprotocols: ClassVar[Sequence[str]] = ()
    #: Extra ``(name, value)`` headers for the handshake response.
    accept_headers: ClassVar[Sequence[tuple[str, str]]] = ()
    #: Seconds between the pings that ``start_ping`` sends.
    PING_INTERVAL: ClassVar[float] = 59
    #: The key of a JSON object that ``on_message(type=...)`` hooks dispatch on.
    message_type_key: ClassVar[str] = "type"
    #: This route's own middleware, inside ``WS_MIDDLEWARE``.
    middleware: ClassVar[Sequence[Any]] = ()
    #: Check the ``Origin`` header; ``None`` follows ``WS_CHECK_ORIGIN``.
    check_origin: ClassVar[bool | None] = None
    #: Per-route limits; ``None`` follows the ``WS_*`` setting of the same name.
    max_message_size: ClassVar[int | None] = None
    max_send_queue: ClassVar[int | None] = None
    max_messages_per_second: ClassVar[float | None] = None
    #: The hooks this class declares beyond ``on_*``, read once at class creation.
    hook_table: ClassVar[HookTable]

    __slots__ = ("_offered_positions",)
    _offered_positions: dict[str, tuple[str, int]]  # set by offered_position

    def __init_subclass__(
        cls, *, declared_hooks: Sequence[DeclaredHook] | None = None, **kwargs: Any
    ) -> None:
        """Compile the class's hooks; ``ws_route`` passes ``declared_hooks``."""
        super().__init_subclass__(**kwargs)
        cls.hook_table = compile_hooks(cls, declared_hooks, base=WebSocketHandler)

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.scope.get('path')!r}>"

    # The handshake --------------------------------------------------------------

    @property
    def request(self) -> WebSocketRequest:
        """The handshake as a Django request (built on first use)."""
        if self._request is None:
            self._request = WebSocketRequest(self.scope)
        return self._request

    @request.setter
    def request(self, value: WebSocketRequest) -> None:
        self._request = value

    @property
    def has_request(self) -> bool:
        """Whether ``request`` was built or set yet (reading it builds it)."""
        return self._request is not None

    # Hooks ----------------------------------------------------------------------

    async def on_open(self) -> None:
        """Run once the socket is accepted."""

    async def on_message(self, data: Any) -> Any:
        """Handle a decoded text frame (or ``bytes`` for a binary frame).

        A value returned that is not ``None`` is sent as if passed to ``send``.
        """
        if self.hook_table.typed:
            kind = data.get(self.message_type_key) if isinstance(data, dict) else None
            return {"error": "unknown message type", self.message_type_key: kind}
        return None

    async def on_close(self) -> None:
        """Run exactly once when the socket has closed, however it closed."""

    async def on_error(self, error: Exception) -> None:
        """Observe an exception from a hook before the socket closes."""

    def on_task_error(self, error: BaseException) -> Any:
        """Handle an exception from a task started with ``start_task`` (logged)."""
        logger.error(
            "Task of %r failed", self, exc_info=(type(error), error, error.__traceback__)
        )

    # Sending --------------------------------------------------------------------

    def send(self, data: Any) -> Awaitable[None]:
        """Encode ``data`` with the codec and send it; awaiting is optional."""
        encoded = self.codec.encode(data)
        key = "text" if type(encoded) is str else "bytes"
        return self.send_event({"type": "websocket.send", key: encoded})

    def send_text(self, text: str) -> Awaitable[None]:
        """Send a text frame as is."""
        return self.send_event({"type": "websocket.send", "text": text})

    def send_bytes(self, data: bytes) -> Awaitable[None]:
        """Send a binary frame as is."""
        return self.send_event({"type": "websocket.send", "bytes": data})

    def send_event(self, event: dict[str, Any]) -> Awaitable[None]:
        """Send a prepared ``websocket.send`` event, in order, bounded.

        Broadcasts use it to hand one encoded event to many members. Awaiting is
        optional; from a worker thread the event is handed to the loop.
        """
        state = self._state
        if state is CONNECTING or state is REFUSED:
            raise RuntimeError(
                f"Expected the connection to be OPEN to send, but it is {state.name}; "
                "send from on_open or later, not from a middleware before calling "
                "the next one."
            )
        # On the loop's own thread (the common case, inlined): straight to the outbox.
        # A thread id, not get_running_loop(), which costs a getpid() system call.
        if get_ident() == self._thread:
            return self._outbox.put(event)
        return self._on_loop(self._outbox.put, event)

    @property
    def send_queue_length(self) -> int:
        """How many messages wait behind the server's back-pressure (0 when none)."""
        return len(self._outbox)

    def close(self, code: int = status.WS_1000_NORMAL_CLOSURE, reason: str = "") -> Awaitable[None]:
        """Close the socket after what is already queued; awaiting is optional.

        Before accept (from a middleware) this refuses the handshake. Once a close
        is under way, or the client has gone, it does nothing.
        """
        state = self._state
        if state is OPEN:
            self._state = CLOSING
        elif state is CONNECTING:
            self._state = REFUSED
        else:
            return SENT
        self.close_code, self.close_reason = code, reason
        message = {"type": "websocket.close", "code": code, "reason": reason}
        return self._on_loop(self._outbox.put_close, message, code)

    def _on_loop(self, put: Callable[..., Awaitable[None]], *args: Any) -> Awaitable[None]:
        if self._loop is None or get_ident() == self._thread:
            return put(*args)
        # A sync hook in a worker thread: hand over to the loop, order kept (FIFO).
        self._loop.call_soon_threadsafe(put, *args)
        return SENT

    # Groups and identity --------------------------------------------------------

    @property
    def connection_id(self) -> str:
        """This connection's id, unique across processes (made on first use)."""
        if self._connection_id is None:
            self._connection_id = new_connection_id()
        return self._connection_id

    @property
    def presence_user(self) -> Any:
        """The authenticated user behind this socket, or ``None`` (for presence)."""
        user = getattr(self._request, "user", None)
        if user is not None and getattr(user, "is_authenticated", False):
            return user
        return None

    @property
    def groups(self) -> set[str]:
        """The groups this socket is in (made on first use)."""
        if self._groups is None:
            self._groups = set()
        return self._groups

    def offered_position(self, group: str) -> tuple[str, int] | None:
        """Take the ``(epoch, offset)`` the client offered for ``group`` in ``ws_since``.

        The query parameter is parsed once, on the first call (``docs/protocol.md``);
        a position is given once, so joining the group again replays nothing.
        """
        try:
            offered = self._offered_positions
        except AttributeError:
            offered = self._offered_positions = parse_since(
                self.scope.get("query_string", b"")
            )
        return offered.pop(group, None)

    async def join(self, group: str) -> None:
        """Add this socket to ``group``; it leaves by itself when the socket closes."""
        from .broadcast import get_backend

        if group not in self.groups and not self.closed:
            self.groups.add(group)
            await get_backend().join(group, self)

    async def leave(self, group: str) -> None:
        """Remove this socket from ``group``."""
        from .broadcast import get_backend

        if group in self.groups:
            self.groups.discard(group)
            await get_backend().leave(group, self)

    async def _leave_all_groups(self) -> None:
        if self._groups:
            for group in list(self._groups):
                await self.leave(group)


WebSocketHandler.hook_table = compile_hooks(WebSocketHandler, (), base=WebSocketHandler)
