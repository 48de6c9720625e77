"""``WebSocketHandler``: one connection object and its one lifecycle.

The subclass API and the decorator DSL both end up here: the DSL compiles functions
into a subclass, so accept, hooks, error handling, tasks, groups and close are the
same code for both.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from threading import get_ident
from typing import Any, ClassVar, NamedTuple

from asgiref.sync import sync_to_async

from . import status
from .chain import chain_for
from .codecs import Codec, JSONCodec
from .conf import clears_on_settings_change, get_settings
from .exceptions import ConnectionClosed, DenyConnection, MessageDecodeError
from .handshake import has_header, refuse_handshake
from .hooks import HookSpec, alias_marked_hooks, marks_of
from .origin import origin_allowed
from .outbox import SENT, Outbox
from .ratelimit import RateLimiter
from .request import WebSocketRequest
from .tasks import TaskMixin

logger = logging.getLogger("django_ws")

_HOOKS = ("on_open", "on_message", "on_close", "on_error")

#: Every accepted connection of this process that has not finished closing.
open_connections: set[WebSocketHandler] = set()


class _Policy(NamedTuple):
    """A handler class's limits with the ``WS_*`` settings filled in."""

    check_origin: bool
    allowed_origins: tuple[str, ...]
    max_message_size: int
    max_send_queue: int
    max_messages_per_second: float | None


#: Policies by handler class, made on a class's first connection: a connection
#: then reads its limits with one lookup instead of a settings read per limit.
_policies: dict[type, _Policy] = {}
clears_on_settings_change(_policies.clear)


def _policy_for(cls: type[WebSocketHandler]) -> _Policy:
    policy = _policies.get(cls)
    if policy is None:
        settings = get_settings()

        def pick(name: str) -> Any:
            value = getattr(cls, name)
            return getattr(settings, name) if value is None else value

        policy = _policies[cls] = _Policy(
            check_origin=pick("check_origin"),
            allowed_origins=settings.allowed_origins,
            max_message_size=pick("max_message_size"),
            max_send_queue=pick("max_send_queue"),
            max_messages_per_second=pick("max_messages_per_second"),
        )
    return policy


def _as_async(function: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Return ``function`` as an async callable; sync ones run in a worker thread."""
    if inspect.iscoroutinefunction(function):
        return function
    return sync_to_async(function)


class WebSocketHandler(TaskMixin):
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

    # Per-connection state lives in slots: an idle socket costs a few hundred bytes
    # here, not a dict per instance. ``__dict__`` stays for subclasses' attributes.
    __slots__ = (
        "__dict__",
        "scope",
        "args",
        "kwargs",
        "connected",
        "closed",
        "_groups",
        "subprotocol",
        "close_code",
        "close_reason",
        "_receive",
        "_asgi_send",
        "_request",
        "_accepted",
        "_refused",
        "_closing",
        "_aborted",
        "_loop",
        "_thread",
        "_task",
        "_outbox",
        "_policy",
    )

    # Compiled once per class by __init_subclass__.
    _typed_hooks: ClassVar[dict[str, Callable[..., Awaitable[Any]]]] = {}
    _autostart: ClassVar[tuple[tuple[str, HookSpec], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        alias_marked_hooks(cls, _HOOKS)
        for name in _HOOKS:
            hook = cls.__dict__.get(name)
            if hook is not None and not inspect.iscoroutinefunction(hook):
                setattr(cls, name, _as_async(hook))
        typed: dict[str, Callable[..., Awaitable[Any]]] = {}
        autostart: dict[str, HookSpec] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                for spec in marks_of(value):
                    if spec.kind == "on_message" and spec.message_type is not None:
                        typed[spec.message_type] = _as_async(value)
                    elif spec.kind in ("periodic", "background"):
                        autostart[name] = spec
        cls._typed_hooks = typed
        cls._autostart = tuple(autostart.items())

    def __init__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
        *,
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.scope = scope
        self.args = tuple(args)
        self.kwargs: dict[str, Any] = {} if kwargs is None else kwargs
        self.connected = False
        self.closed = False
        self._tasks: dict[str, asyncio.Task[Any]] | None = None
        self._groups: set[str] | None = None
        self.subprotocol: str | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self._receive = receive
        self._asgi_send = send
        self._request: WebSocketRequest | None = None
        self._accepted = False
        self._refused = False
        self._closing = False
        self._aborted = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None  # the loop's thread
        self._task: asyncio.Task[Any] | None = None
        self._policy = _policy_for(type(self))
        self._outbox = Outbox(
            send,
            limit=self._policy.max_send_queue,
            on_overflow=self._send_queue_full,
            on_lost=self._client_gone,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.scope.get('path')!r}>"

    @property
    def request(self) -> WebSocketRequest:
        """The handshake as a Django request (built on first use)."""
        if self._request is None:
            self._request = WebSocketRequest(self.scope)
        return self._request

    @request.setter
    def request(self, value: WebSocketRequest) -> None:
        self._request = value

    # Hooks --------------------------------------------------------------------

    async def on_open(self) -> None:
        """Run once the socket is accepted."""

    async def on_message(self, data: Any) -> Any:
        """Handle a decoded text frame (or ``bytes`` for a binary frame).

        A value returned that is not ``None`` is sent as if passed to ``send``.
        """
        if self._typed_hooks:
            return await self._unknown_message_type(data)
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

    # Sending ------------------------------------------------------------------

    def send(self, data: Any) -> Awaitable[None]:
        """Encode ``data`` with the codec and send it; awaiting is optional."""
        encoded = self.codec.encode(data)
        key = "text" if type(encoded) is str else "bytes"
        return self._put_frame({"type": "websocket.send", key: encoded})

    def send_text(self, text: str) -> Awaitable[None]:
        """Send a text frame as is."""
        return self._put_frame({"type": "websocket.send", "text": text})

    def send_bytes(self, data: bytes) -> Awaitable[None]:
        """Send a binary frame as is."""
        return self._put_frame({"type": "websocket.send", "bytes": data})

    def _put_frame(self, message: dict[str, Any]) -> Awaitable[None]:
        if not self._accepted:
            raise RuntimeError(
                "Expected the socket to be accepted before 'websocket.send'; send from "
                "on_open or later, not from a middleware before calling the next one."
            )
        # On the loop's own thread (the common case, inlined): straight to the outbox.
        # A thread id, not get_running_loop(), which costs a getpid() system call.
        if get_ident() == self._thread:
            return self._outbox.put(message)
        return self._on_loop(self._outbox.put, message)

    def close(self, code: int = status.WS_1000_NORMAL_CLOSURE, reason: str = "") -> Awaitable[None]:
        """Close the socket after what is already queued; awaiting is optional."""
        if self._closing:
            return SENT
        self._closing = True
        self.close_code, self.close_reason = code, reason
        message = {"type": "websocket.close", "code": code, "reason": reason}
        return self._on_loop(self._outbox.put_last, message, code)

    def _on_loop(self, put: Callable[..., Awaitable[None]], *args: Any) -> Awaitable[None]:
        if self._loop is None or get_ident() == self._thread:
            return put(*args)
        # A sync hook in a worker thread: hand over to the loop, order kept (FIFO).
        self._loop.call_soon_threadsafe(put, *args)
        return SENT

    def _send_queue_full(self) -> None:
        self._abort(status.WS_1008_POLICY_VIOLATION, "Client too slow: send queue full")

    def _client_gone(self, error: BaseException) -> None:
        self._outbox.shut(status.WS_1006_ABNORMAL_CLOSURE)
        if not self._closing:  # the server may later report 1005: the send knew better
            self._closing = True
            self.close_code = status.WS_1006_ABNORMAL_CLOSURE

    def _abort(self, code: int, reason: str) -> None:
        """Drop what is queued, end the lifecycle now, and try to send a close."""
        if self._aborted:
            return
        self._aborted = self._closing = True
        self.close_code, self.close_reason = code, reason
        self._outbox.shut(code)
        logger.warning("Closing %r with %s: %s", self, code, reason)
        if self._task is not None and not self.closed:
            self._task.cancel()

    def _absorb_abort(self) -> None:
        """Let the cancellation that ``_abort`` caused end here (3.11+ bookkeeping)."""
        if self._task is not None and hasattr(self._task, "uncancel"):
            self._task.uncancel()

    # Groups -------------------------------------------------------------------

    @property
    def groups(self) -> set[str]:
        """The groups this socket is in (made on first use)."""
        if self._groups is None:
            self._groups = set()
        return self._groups

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

    # Lifecycle ----------------------------------------------------------------

    async def serve(self) -> None:
        """Run this connection from handshake to close (the ASGI app calls it)."""
        message = await self._receive()
        if message["type"] != "websocket.connect":
            return
        task = self._task = asyncio.current_task()
        self._loop = task.get_loop() if task is not None else asyncio.get_running_loop()
        self._thread = get_ident()
        # The handshake's steps stay in this frame rather than a coroutine of their
        # own: an open socket keeps every frame of its call chain alive.
        policy = self._policy
        try:
            if (
                policy.check_origin
                and has_header(self.scope, b"origin")
                and not origin_allowed(self.request, policy.allowed_origins)
            ):
                logger.warning(
                    "Refused %r: Origin %r not allowed", self, self.request.META["HTTP_ORIGIN"]
                )
                await self._refuse(403)
                return
            try:
                await chain_for(type(self))(self)
            except DenyConnection as deny:
                if not self._accepted:
                    await self._refuse(deny.status)
                else:
                    logger.warning("DenyConnection raised after accept on %r: %s", self, deny)
            except asyncio.CancelledError:
                if not self._aborted:
                    raise
                self._absorb_abort()
            except ConnectionClosed:
                pass  # the client left during the handshake
            except Exception:
                logger.exception("Middleware of %r failed", self)
                if not self._accepted:
                    await self._refuse(500)
            finally:
                if not self._accepted and not self._refused:
                    await self._refuse(403)
            if self._aborted:
                await self._send_abort_close()
        finally:
            # The outbox holds bound methods of this handler, which holds the outbox:
            # breaking that cycle frees a finished connection (and the server's
            # protocol objects it references) by reference counting, at once,
            # instead of leaving it all to the cyclic garbage collector.
            self._outbox.detach()
            self._task = None

    async def _refuse(self, http_status: int) -> None:
        self._refused = True
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
        try:
            await self._asgi_send(message)
        except Exception as error:  # the client left before the accept went out
            logger.debug("Accept for %r not sent: %r", self, error)
            raise ConnectionClosed(status.WS_1006_ABNORMAL_CLOSURE) from None
        self._accepted = self.connected = True

    async def _run(self) -> None:
        """The innermost link of the middleware chain: accept, serve, close."""
        if self._closing:  # a middleware closed the socket before accept: a refusal
            self._refused = True
            return
        await self._accept()
        open_connections.add(self)
        cls = type(self)
        try:
            # Hooks left as the no-op defaults are not called: a connection that only
            # answers messages pays for no extra coroutine at open and close.
            if cls.on_open is _default_on_open or await self._call_hook(self.on_open):
                if cls._autostart and not self._closing:  # on_open may have closed it
                    self._start_marked_tasks()
                await self._receive_loop()
            else:
                await self._drain_until_disconnect()
        except asyncio.CancelledError:
            if not self._aborted:
                raise
            self._absorb_abort()
        finally:
            self.connected = False
            self.closed = True
            if self._tasks:
                await self._cancel_tasks()
            if self._groups:
                await self._leave_all_groups()
            if cls.on_close is not _default_on_close:
                await self._call_hook(self.on_close)
            open_connections.discard(self)

    async def _call_hook(self, hook: Callable[..., Awaitable[Any]], *args: Any) -> bool:
        try:
            await hook(*args)
        except ConnectionClosed:
            return False
        except Exception as error:
            await self._fail(error)
            return False
        return True

    async def _receive_loop(self) -> None:
        receive = self._receive
        decode = self.codec.decode
        max_size = self._policy.max_message_size
        rate = self._policy.max_messages_per_second
        limiter = RateLimiter(rate) if rate else None
        typed = self._typed_hooks
        type_key = self.message_type_key
        on_message = self.on_message
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.receive":
                if self._closing:
                    continue
                try:
                    text = message.get("text")
                    if text is not None:
                        if len(text) * 4 > max_size and len(text.encode()) > max_size:
                            await self._too_big(len(text.encode()), max_size)
                            continue
                        data = decode(text)
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
                        result = await on_message(data)
                    if result is not None:
                        sent = self.send(result)
                        if sent is not SENT:  # queued behind back-pressure, or dropped
                            await sent
                except ConnectionClosed:
                    pass
                except MessageDecodeError as error:
                    await self._client_error(error)
                except Exception as error:
                    await self._fail(error)
            elif kind == "websocket.disconnect":
                self._disconnected(message)
                return

    async def _drain_until_disconnect(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                self._disconnected(message)
                return

    def _disconnected(self, message: dict[str, Any]) -> None:
        self._outbox.shut(message.get("code", status.WS_1005_NO_STATUS_RECEIVED))
        if not self._closing:
            self.close_code = message.get("code", status.WS_1005_NO_STATUS_RECEIVED)
            self.close_reason = message.get("reason") or ""

    async def _unknown_message_type(self, data: Any) -> Any:
        kind = data.get(self.message_type_key) if isinstance(data, dict) else None
        return {"error": "unknown message type", self.message_type_key: kind}

    async def _too_big(self, size: int, limit: int) -> None:
        logger.warning("Closing %r: message of %d bytes over the limit of %d", self, size, limit)
        await self.close(status.WS_1009_MESSAGE_TOO_BIG, "Message too big")

    async def _client_error(self, error: MessageDecodeError) -> None:
        logger.warning("Closing %r: %s", self, error)
        await self._observe(error)
        await self.close(status.WS_1007_INVALID_FRAME_PAYLOAD_DATA, "Invalid message")

    async def _fail(self, error: Exception) -> None:
        logger.error(
            "Error in %r", self, exc_info=(type(error), error, error.__traceback__)
        )
        await self._observe(error)
        self.close(status.WS_1011_INTERNAL_ERROR, "Internal server error")

    async def _observe(self, error: Exception) -> None:
        try:
            await self.on_error(error)
        except Exception:
            logger.exception("on_error of %r failed", self)

    async def _send_abort_close(self) -> None:
        message = {"type": "websocket.close", "code": self.close_code, "reason": self.close_reason}
        try:
            await asyncio.wait_for(self._asgi_send(message), get_settings().close_timeout)
        except (asyncio.TimeoutError, Exception):  # the client is not reading: give up
            logger.debug("Close frame to %r not taken by the server", self)


_default_on_open = WebSocketHandler.on_open
_default_on_close = WebSocketHandler.on_close
