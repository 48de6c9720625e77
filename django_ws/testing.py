"""An in-process test client: drive the ASGI application without a server.

It plays the server's part of the ASGI protocol (including the
``websocket.http.response`` extension, so refusals carry their HTTP status), the
same way uvicorn does, so a test reads like a client session::

    async with WebSocketTestClient().connect("/chat/lobby") as ws:
        await ws.send_json({"text": "hi"})
        assert await ws.receive_json() == {"echo": "hi"}
        await ws.assert_nothing_received()

It can also be the server a test needs for the hard cases: a client that stops
reading (``pause_reading``), a server that suspends on every send
(``yield_each_send``), raw ASGI events in both directions (``send_event``,
``events``), and a client that never answers the application's close
(``answer_close=False``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from typing import Any, cast
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from asgiref.typing import (
    ASGIReceiveEvent,
    ASGISendEvent,
    WebSocketCloseEvent,
    WebSocketScope,
)

from .application import WebSocketApplication, get_websocket_application

#: An ASGI application as the client calls it.
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

#: Rounds of the event loop with nothing sent after which an application waiting
#: on ``receive`` counts as idle: enough for the tasks it started to run the
#: chain of callbacks a message sets off, without any wall-clock wait.
IDLE_ROUNDS = 20


class WebSocketTestConnection:
    """One client connection to the application under test."""

    def __init__(
        self, app: ASGIApp, scope: WebSocketScope, *, answer_close: bool = True
    ) -> None:
        self.app = app
        self.scope = scope
        #: When the application closes, answer with ``websocket.disconnect`` as a
        #: client that completes the close handshake does. ``False`` leaves the
        #: application waiting, so a test can feed it more events after its close.
        self.answer_close = answer_close
        #: Make every ``websocket.send`` suspend the application once, as a busy
        #: server may.
        self.yield_each_send = False
        self.accepted = False
        #: HTTP status of a refused handshake (403 when the server has no extension).
        self.status: int | None = None
        self.subprotocol: str | None = None
        self.accept_headers: list[tuple[bytes, bytes]] = []
        self.close_code: int | None = None
        self.close_reason = ""
        #: Every ASGI event the application sent, in order, received by the test
        #: or not (the accept and the close included).
        self.events: list[ASGISendEvent] = []
        self._to_app: asyncio.Queue[ASGIReceiveEvent] = asyncio.Queue()
        self._from_app: asyncio.Queue[ASGISendEvent] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._client_left = False  # a disconnect was delivered to the application
        self._app_closed = False
        self._waiting_on_receive = False
        self._reading = asyncio.Event()
        self._reading.set()
        self._send_blocked = asyncio.Event()

    async def _receive(self) -> ASGIReceiveEvent:
        if not self._to_app.empty():
            return self._to_app.get_nowait()
        self._waiting_on_receive = True
        try:
            return await self._to_app.get()
        finally:
            self._waiting_on_receive = False

    async def _send(self, event: ASGISendEvent) -> None:
        kind = event["type"]
        if (self._client_left or self._app_closed) and kind in (
            "websocket.send",
            "websocket.close",
        ):
            raise OSError("client disconnected")
        if kind == "websocket.send":
            if not self._reading.is_set():
                self._send_blocked.set()
                await self._reading.wait()
            if self.yield_each_send:
                await asyncio.sleep(0)
        self.events.append(event)
        if kind == "websocket.close":
            self._app_closed = True
            if self.answer_close:
                close = cast(WebSocketCloseEvent, event)
                self._put(
                    {
                        "type": "websocket.disconnect",
                        "code": close.get("code", 1000),
                        "reason": close.get("reason") or "",
                    }
                )
        await self._from_app.put(event)

    def _put(self, event: ASGIReceiveEvent) -> None:
        if event["type"] == "websocket.disconnect":
            self._client_left = True
        self._to_app.put_nowait(event)

    async def open(self, timeout: float = 3) -> WebSocketTestConnection:
        """Start the handshake and wait for acceptance or refusal."""
        self._task = asyncio.ensure_future(self.app(self.scope, self._receive, self._send))
        self._put({"type": "websocket.connect"})
        event = await self._next(timeout)
        if event["type"] == "websocket.accept":
            self.accepted = True
            self.subprotocol = event.get("subprotocol")
            self.accept_headers = list(event.get("headers", []))
        elif event["type"] == "websocket.close":
            self.status = 403
            self.close_code = event.get("code")
        elif event["type"] == "websocket.http.response.start":
            self.status = event["status"]
            await self._next(timeout)  # the body
            self._client_left = True
        else:
            raise AssertionError(f"Expected accept or refusal, got {event!r}")
        return self

    async def _next(self, timeout: float) -> ASGISendEvent:
        task = self._started()
        getter = asyncio.ensure_future(self._from_app.get())
        waiting: set[asyncio.Future[Any]] = {getter, task}
        done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        if task in done:
            task.result()  # raises the application's exception, if any
            raise AssertionError("The application ended without sending anything")
        raise asyncio.TimeoutError(f"Nothing received within {timeout} s")

    def _started(self) -> asyncio.Task[None]:
        assert self._task is not None, "open() first"
        return self._task

    # Sending ------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        self._put(cast(ASGIReceiveEvent, {"type": "websocket.receive", "text": text}))

    async def send_bytes(self, data: bytes) -> None:
        self._put(cast(ASGIReceiveEvent, {"type": "websocket.receive", "bytes": data}))

    async def send_json(self, data: Any) -> None:
        await self.send_text(json.dumps(data))

    async def send_event(self, event: ASGIReceiveEvent | dict[str, Any]) -> None:
        """Deliver a raw ASGI event to the application's ``receive``.

        A ``websocket.disconnect`` marks the client gone: the application's later
        sends fail as a server's do.
        """
        self._put(cast(ASGIReceiveEvent, event))

    # Receiving ----------------------------------------------------------------

    async def receive(self, timeout: float = 3) -> ASGISendEvent:
        """Return the next ASGI event the application sent; a close is recorded."""
        event = await self._next(timeout)
        if event["type"] == "websocket.close":
            self.close_code = event.get("code", 1000)
            self.close_reason = event.get("reason") or ""
        return event

    async def receive_text(self, timeout: float = 3) -> str:
        event: dict[str, Any] = dict(await self.receive(timeout))
        if event.get("text") is None:
            raise AssertionError(f"Expected a text frame, got {event!r}")
        return str(event["text"])

    async def receive_bytes(self, timeout: float = 3) -> bytes:
        event: dict[str, Any] = dict(await self.receive(timeout))
        if event.get("bytes") is None:
            raise AssertionError(f"Expected a binary frame, got {event!r}")
        return bytes(event["bytes"])

    async def receive_json(self, timeout: float = 3) -> Any:
        return json.loads(await self.receive_text(timeout))

    async def receive_close(self, timeout: float = 3) -> int:
        """Wait for the application to close the socket; return the close code."""
        event = await self.receive(timeout)
        if event["type"] != "websocket.close":
            raise AssertionError(f"Expected a close, got {event!r}")
        return int(self.close_code or 1000)

    async def wait_idle(self, timeout: float = 3) -> None:
        """Wait until the application has handled every event sent to it.

        Idle means: waiting on ``receive`` with nothing left to read, and nothing
        sent for ``IDLE_ROUNDS`` rounds of the event loop (the tasks the
        application started have had their turn). An application that ended is
        idle; its exception, if it raised one, is raised here. ``TimeoutError``
        if it is still busy after ``timeout`` seconds, as one blocked on a paused
        client or on an event of its own is. Work the application does later, on
        a timer or on network I/O (a Redis broadcast), is not waited for: for
        that, make it send a marker after it, and receive the marker.
        """
        task = self._started()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet = 0
        while quiet < IDLE_ROUNDS:
            if task.done():
                task.result()
                return
            if loop.time() > deadline:
                raise asyncio.TimeoutError(
                    f"The application was still busy after {timeout} s"
                )
            sent = len(self.events)
            await asyncio.sleep(0)
            idle = self._waiting_on_receive and self._to_app.empty()
            quiet = quiet + 1 if idle and len(self.events) == sent else 0

    async def assert_nothing_received(self, timeout: float = 3) -> None:
        """Fail if the application sent anything the test has not received yet.

        It first waits for the application to be idle (see ``wait_idle``), so it
        checks everything the events sent so far made the application do; an
        application that ended passes (its exception, if any, is raised).
        """
        await self.wait_idle(timeout)
        if not self._from_app.empty():
            raise AssertionError(f"Expected nothing, received {self._from_app.get_nowait()!r}")

    # Back-pressure ------------------------------------------------------------

    def pause_reading(self) -> None:
        """Stop reading, as a stalled client: the application's sends block.

        A ``websocket.send`` waits until ``resume_reading``; a ``websocket.close``
        still goes out, as servers send it with a timeout of their own.
        """
        self._reading.clear()
        self._send_blocked.clear()

    def resume_reading(self) -> None:
        """Read again: the blocked send, and those after it, go through."""
        self._reading.set()

    async def wait_send_blocked(self, timeout: float = 3) -> None:
        """Wait until the application is blocked on a send to this paused client."""
        await asyncio.wait_for(self._send_blocked.wait(), timeout)

    # Closing ------------------------------------------------------------------

    async def close(self, code: int = 1000, timeout: float = 3) -> None:
        """Close from the client's side and wait for the application to finish."""
        if not self._client_left:
            self._put(cast(ASGIReceiveEvent, {"type": "websocket.disconnect", "code": code}))
        await self.wait_closed(timeout)

    async def wait_closed(self, timeout: float = 3) -> None:
        """Wait for the application's task to end, raising what it raised."""
        if self._task is not None:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)

    def cancel(self) -> None:
        """Cancel the application, as a server does at its shutdown timeout."""
        self._started().cancel()


class WebSocketTestClient:
    """Open test connections to ``app`` (the project's application by default)."""

    def __init__(self, app: WebSocketApplication | ASGIApp | None = None, **app_options: Any) -> None:
        self.app: ASGIApp = app if app is not None else get_websocket_application(**app_options)
        self.cookies: SimpleCookie = SimpleCookie()

    async def force_login(self, user: Any, backend: str | None = None) -> None:
        """Log ``user`` in: later connections carry its session cookie."""
        from django.test import Client

        client = Client()
        await sync_to_async(client.force_login)(user, backend)
        self.cookies.update(client.cookies)

    def logout(self) -> None:
        self.cookies = SimpleCookie()

    def scope(
        self,
        path: str,
        *,
        query_string: str | dict[str, Any] = "",
        headers: Iterable[tuple[str, str]] = (),
        cookies: dict[str, str] | None = None,
        subprotocols: Iterable[str] = (),
        http_response_extension: bool = True,
    ) -> WebSocketScope:
        """Return the websocket scope a server would build for this handshake."""
        if isinstance(query_string, dict):
            query_string = urlencode(query_string, doseq=True)
        jar = {key: morsel.value for key, morsel in self.cookies.items()}
        jar.update(cookies or {})
        raw_headers = [(b"host", b"testserver")]
        raw_headers += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        if jar:
            cookie = "; ".join(f"{key}={value}" for key, value in jar.items())
            raw_headers.append((b"cookie", cookie.encode("latin-1")))
        return {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query_string.encode(),
            "headers": raw_headers,
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
            "subprotocols": list(subprotocols),
            "extensions": {"websocket.http.response": {}} if http_response_extension else {},
            "state": {},
        }

    @asynccontextmanager
    async def connect(
        self,
        path: str,
        *,
        timeout: float = 3,
        answer_close: bool = True,
        **scope_options: Any,
    ) -> AsyncIterator[WebSocketTestConnection]:
        """Open a connection to ``path``; close it (and check the app ended) on exit."""
        connection = WebSocketTestConnection(
            self.app, self.scope(path, **scope_options), answer_close=answer_close
        )
        await connection.open(timeout)
        try:
            yield connection
        finally:
            await connection.close(timeout=timeout)
