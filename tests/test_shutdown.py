"""Lifespan shutdown closes every open socket with 1001, bounded by WS_CLOSE_TIMEOUT.

uvicorn closes sockets itself (1012) before it sends the lifespan shutdown, so
under uvicorn this path only meets sockets that it left open; these tests drive
it directly, as a server that sends the lifespan shutdown first would.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.urls import path

from django_ws import WebSocketApplication, WebSocketHandler
from django_ws.handler import open_connections
from django_ws.testing import WebSocketTestClient, WebSocketTestConnection
from tests.core_support import app_for


async def shut_down(app: WebSocketApplication, timeout: float = 10) -> list[dict[str, Any]]:
    """Run the lifespan startup and shutdown; return what the app sent."""
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for message in ("lifespan.startup", "lifespan.shutdown"):
        to_app.put_nowait({"type": message})
    await asyncio.wait_for(app({"type": "lifespan"}, to_app.get, send), timeout)
    return sent


async def test_shutdown_closes_every_socket_with_1001_and_runs_each_on_close_once() -> None:
    events: list[str] = []

    class Worker(WebSocketHandler):
        async def on_open(self) -> None:
            self.work = self.start_task("work", asyncio.Event().wait)

        async def on_close(self) -> None:
            events.append(f"close {self.close_code}, task cancelled: {self.work.cancelled()}")

    app = app_for(path("ws", Worker))
    ws_client = WebSocketTestClient(app)
    async with ws_client.connect("/ws") as first, ws_client.connect("/ws") as second:
        assert await shut_down(app) == [
            {"type": "lifespan.startup.complete"},
            {"type": "lifespan.shutdown.complete"},
        ]
        for ws in (first, second):
            assert await ws.receive_close() == 1001
            assert ws.close_reason == "Server shutting down"
    assert events == ["close 1001, task cancelled: True"] * 2
    assert open_connections == set()


async def test_shutdown_gives_up_on_a_stuck_socket_after_ws_close_timeout(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.WS_CLOSE_TIMEOUT = 0.2
    stuck = asyncio.Event()
    events: list[str] = []

    class Stuck(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            stuck.set()
            await asyncio.Event().wait()  # never reads the disconnect

        async def on_close(self) -> None:
            events.append("close")

    app = app_for(path("ws", Stuck))
    ws_client = WebSocketTestClient(app)
    ws = await WebSocketTestConnection(app, ws_client.scope("/ws")).open()
    await ws.send_json("hang")
    await asyncio.wait_for(stuck.wait(), 3)

    sent = await shut_down(app, timeout=3)
    assert sent[-1] == {"type": "lifespan.shutdown.complete"}
    assert "1 sockets still open after close timeout" in caplog.text
    assert await ws.receive_close() == 1001
    assert events == []

    ws.cancel()  # what the server does at its own graceful-shutdown timeout
    with pytest.raises(asyncio.CancelledError):
        await ws.wait_closed()
    assert events == ["close"]
    assert open_connections == set()
