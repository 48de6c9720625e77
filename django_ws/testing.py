"""An in-process test client: drive the ASGI application without a server.

It plays the server's part of the ASGI protocol (including the
``websocket.http.response`` extension, so refusals carry their HTTP status), the
same way uvicorn does, so a test reads like a client session::

    async with WebSocketTestClient().connect("/chat/lobby") as ws:
        await ws.send_json({"text": "hi"})
        assert await ws.receive_json() == {"echo": "hi"}
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async

from .application import WebSocketApplication, get_websocket_application


class Refused(AssertionError):
    """The handshake was refused where the test expected it to be accepted."""


class WebSocketTestConnection:
    """One client connection to the application under test."""

    def __init__(self, app: Any, scope: dict[str, Any]) -> None:
        self.app = app
        self.scope = scope
        self.accepted = False
        #: HTTP status of a refused handshake (403 when the server has no extension).
        self.status: int | None = None
        self.subprotocol: str | None = None
        self.accept_headers: list[tuple[bytes, bytes]] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._disconnected = False

    async def _receive(self) -> dict[str, Any]:
        return await self._to_app.get()

    async def _send(self, message: dict[str, Any]) -> None:
        if self._disconnected and message["type"] in ("websocket.send", "websocket.close"):
            raise OSError("client disconnected")
        if message["type"] == "websocket.close" and not self._disconnected:
            self._disconnected = True
            self._to_app.put_nowait(
                {"type": "websocket.disconnect", "code": message.get("code", 1000), "reason": message.get("reason", "")}
            )
        await self._from_app.put(message)

    async def open(self, timeout: float = 3) -> WebSocketTestConnection:
        """Start the handshake and wait for acceptance or refusal."""
        self._task = asyncio.ensure_future(self.app(self.scope, self._receive, self._send))
        await self._to_app.put({"type": "websocket.connect"})
        message = await self._next(timeout)
        if message["type"] == "websocket.accept":
            self.accepted = True
            self.subprotocol = message.get("subprotocol")
            self.accept_headers = list(message.get("headers", []))
        elif message["type"] == "websocket.close":
            self.status = 403
            self.close_code = message.get("code")
        elif message["type"] == "websocket.http.response.start":
            self.status = message["status"]
            await self._next(timeout)  # the body
            self._disconnected = True
        else:
            raise AssertionError(f"Expected accept or refusal, got {message!r}")
        return self

    async def _next(self, timeout: float) -> dict[str, Any]:
        assert self._task is not None, "open() first"
        getter = asyncio.ensure_future(self._from_app.get())
        waiting: set[asyncio.Future[Any]] = {getter, self._task}
        done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        if self._task in done:
            self._task.result()  # raises the application's exception, if any
            raise AssertionError("The application ended without sending anything")
        raise asyncio.TimeoutError(f"Nothing received within {timeout} s")

    # Sending ------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        await self._to_app.put({"type": "websocket.receive", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self._to_app.put({"type": "websocket.receive", "bytes": data})

    async def send_json(self, data: Any) -> None:
        await self.send_text(json.dumps(data))

    # Receiving ----------------------------------------------------------------

    async def receive(self, timeout: float = 3) -> dict[str, Any]:
        """Return the next ASGI event the application sent; a close is recorded."""
        message = await self._next(timeout)
        if message["type"] == "websocket.close":
            self.close_code = message.get("code", 1000)
            self.close_reason = message.get("reason") or ""
        return message

    async def receive_text(self, timeout: float = 3) -> str:
        message = await self.receive(timeout)
        if message.get("text") is None:
            raise AssertionError(f"Expected a text frame, got {message!r}")
        return str(message["text"])

    async def receive_bytes(self, timeout: float = 3) -> bytes:
        message = await self.receive(timeout)
        if message.get("bytes") is None:
            raise AssertionError(f"Expected a binary frame, got {message!r}")
        return bytes(message["bytes"])

    async def receive_json(self, timeout: float = 3) -> Any:
        return json.loads(await self.receive_text(timeout))

    async def receive_close(self, timeout: float = 3) -> int:
        """Wait for the application to close the socket; return the close code."""
        message = await self.receive(timeout)
        if message["type"] != "websocket.close":
            raise AssertionError(f"Expected a close, got {message!r}")
        return int(self.close_code or 1000)

    async def assert_nothing_received(self, timeout: float = 0.1) -> None:
        """Fail if the application sends anything within ``timeout`` seconds.

        An application that ended without sending more passes (its exception, if
        it raised one, is raised here).
        """
        try:
            message = await asyncio.wait_for(self._from_app.get(), timeout)
        except asyncio.TimeoutError:
            if self._task is not None and self._task.done():
                self._task.result()
            return
        raise AssertionError(f"Expected nothing, received {message!r}")

    # Closing ------------------------------------------------------------------

    async def close(self, code: int = 1000, timeout: float = 3) -> None:
        """Close from the client's side and wait for the application to finish."""
        if not self._disconnected:
            self._disconnected = True
            await self._to_app.put({"type": "websocket.disconnect", "code": code})
        await self.wait_closed(timeout)

    async def wait_closed(self, timeout: float = 3) -> None:
        """Wait for the application's task to end, raising what it raised."""
        if self._task is not None:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)


class WebSocketTestClient:
    """Open test connections to ``app`` (the project's application by default)."""

    def __init__(self, app: WebSocketApplication | Any | None = None, **app_options: Any) -> None:
        self.app = app if app is not None else get_websocket_application(**app_options)
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
    ) -> dict[str, Any]:
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
    async def connect(self, path: str, *, timeout: float = 3, **scope_options: Any) -> AsyncIterator[WebSocketTestConnection]:
        """Open a connection to ``path``; close it (and check the app ended) on exit."""
        connection = WebSocketTestConnection(self.app, self.scope(path, **scope_options))
        await connection.open(timeout)
        try:
            yield connection
        finally:
            await connection.close(timeout=timeout)
