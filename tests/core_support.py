"""Helpers for the core tests: an isolated app per test, and a raw ASGI server.

``client_for`` builds an application over a urlconf made in the test and an empty
route registry, so no test sees another test's routes. ``RawServer`` plays the
server side of the ASGI protocol by hand, for what the test client cannot do on
purpose: back-pressure, a server that yields on every send, unknown event types.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

from django.urls import path

from django_ws import WebSocketApplication, get_websocket_application
from django_ws.decorators.registry import RouteRegistry
from django_ws.testing import WebSocketTestClient

_names = itertools.count()


def urlconf(*patterns: Any) -> ModuleType:
    """Return a fresh ws urlconf module holding ``patterns``."""
    module = ModuleType(f"tests.core_support.urlconf_{next(_names)}")
    module.urlpatterns = list(patterns)  # type: ignore[attr-defined]
    return module


def app_for(*patterns: Any, http_app: Any = None) -> WebSocketApplication:
    """Return an application routing ``patterns`` only (no ``@ws_route`` routes)."""
    if http_app is None:
        http_app = _no_http
    return get_websocket_application(
        http_app, urlconf=urlconf(*patterns), registry=RouteRegistry()
    )


def client_for(*patterns: Any) -> WebSocketTestClient:
    """Return a test client for an application routing ``patterns``."""
    return WebSocketTestClient(app_for(*patterns))


def client(handler: type, route: str = "ws") -> WebSocketTestClient:
    """Return a test client with ``handler`` served at ``/<route>``."""
    return client_for(path(route, handler))


async def _no_http(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError(f"The HTTP app was called with a {scope['type']} scope")


def websocket_scope(path: str = "/ws", **extra: Any) -> dict[str, Any]:
    """Return the scope the test client would build for ``path``."""
    return {**WebSocketTestClient(_no_http).scope(path), **extra}


class RawServer:
    """The server side of one ASGI websocket connection, driven by the test.

    ``sent`` lists every event the application sent. While ``paused`` is set the
    ``websocket.send`` events block, as a server does when its client stops
    reading; ``yield_each_send`` makes every send suspend once, as a busy server
    may. Once a disconnect is pushed, sends raise ``OSError`` as a real server's do.
    """

    def __init__(
        self, app: Callable[..., Awaitable[None]], scope: dict[str, Any]
    ) -> None:
        self.app = app
        self.scope = scope
        self.sent: list[dict[str, Any]] = []
        self.paused = False
        self.yield_each_send = False
        self.client_gone = False
        self._resume = asyncio.Event()
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._arrived = asyncio.Condition()
        self.task: asyncio.Task[None] | None = None

    async def _receive(self) -> dict[str, Any]:
        return await self._inbox.get()

    async def _send(self, message: dict[str, Any]) -> None:
        if self.client_gone and message["type"] in (
            "websocket.send",
            "websocket.close",
        ):
            raise OSError("client disconnected")
        if message["type"] == "websocket.send":
            if self.paused:
                await self._resume.wait()
            if self.yield_each_send:
                await asyncio.sleep(0)
        self.sent.append(message)
        async with self._arrived:
            self._arrived.notify_all()

    def start(self) -> None:
        self.task = asyncio.ensure_future(
            self.app(self.scope, self._receive, self._send)
        )

    def push(self, message: dict[str, Any]) -> None:
        """Deliver ``message`` to the application's ``receive``."""
        if message["type"] == "websocket.disconnect":
            self.client_gone = True
        self._inbox.put_nowait(message)

    def resume(self) -> None:
        self.paused = False
        self._resume.set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [message for message in self.sent if message["type"] == kind]

    async def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 3
    ) -> None:
        """Wait until ``predicate(self.sent)`` holds, at most ``timeout`` seconds."""

        async def until() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: predicate(self.sent))

        await asyncio.wait_for(until(), timeout)

    async def finished(self, timeout: float = 3) -> None:
        """Wait for the application to return, raising what it raised."""
        assert self.task is not None
        await asyncio.wait_for(asyncio.shield(self.task), timeout)
