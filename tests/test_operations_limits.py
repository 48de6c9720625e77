"""Connection limits in one process: every way a socket ends gives its count back.

With ``WS_MAX_CONNECTIONS_PER_IP = 1`` (every test-client socket comes from
127.0.0.1), a second socket is admitted only once the first one's count is back.
The limits across processes are in ``tests/e2e/test_operations_e2e.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from django.urls import path

from django_ws import WebSocketHandler
from django_ws.application import close_all
from django_ws.operations import hooks
from django_ws.testing import WebSocketTestClient, WebSocketTestConnection
from tests.core_support import app_for, client
from tests.test_limits import blocked_queue_lengths


@pytest.fixture(autouse=True)
def one_socket_per_address(settings: Any) -> None:
    settings.WS_MAX_CONNECTIONS_PER_IP = 1
    settings.WS_BROADCAST = {"BACKEND": "django_ws.broadcast.MemoryBackend"}


class Echo(WebSocketHandler):
    opened = 0

    async def on_open(self) -> None:
        type(self).opened += 1

    async def on_message(self, data: Any) -> Any:
        if data == "fail":
            raise ValueError("boom")
        if data == "close":
            self.close(4000, "bye")
            return None
        return data


async def admitted_again(app: WebSocketTestClient) -> None:
    """Wait (bounded) until a new socket is admitted: the count was given back."""
    deadline = time.monotonic() + 3
    while True:
        async with app.connect("/ws") as ws:
            if ws.accepted:
                return
        assert time.monotonic() < deadline, "the count was never given back"
        await asyncio.sleep(0.01)


async def test_a_socket_over_the_limit_is_refused_429_and_runs_no_hook() -> None:
    class Counted(Echo):
        opened = 0

    app = client(Counted)
    async with app.connect("/ws") as first:
        assert first.accepted
        async with app.connect("/ws") as second:
            assert (second.accepted, second.status) == (False, 429)
        assert Counted.opened == 1
    await admitted_again(app)


async def end_by_client_close(ws: WebSocketTestConnection) -> None:
    await ws.close(1000)


async def end_by_server_close(ws: WebSocketTestConnection) -> None:
    await ws.send_json("close")
    assert await ws.receive_close() == 4000


async def end_by_error(ws: WebSocketTestConnection) -> None:
    await ws.send_json("fail")
    assert await ws.receive_close() == 1011


async def end_by_vanishing(ws: WebSocketTestConnection) -> None:
    await ws.send_event({"type": "websocket.disconnect", "code": 1006})
    await ws.wait_closed()


async def end_by_shutdown(ws: WebSocketTestConnection) -> None:
    await close_all(1001, "Server shutting down")
    assert await ws.receive_close() == 1001


@pytest.mark.parametrize(
    "end",
    [
        end_by_client_close,
        end_by_server_close,
        end_by_error,
        end_by_vanishing,
        end_by_shutdown,
    ],
)
async def test_every_way_a_socket_ends_gives_its_count_back(
    end: Callable[[WebSocketTestConnection], Awaitable[None]],
) -> None:
    app = client(Echo)
    async with app.connect("/ws") as ws:
        assert ws.accepted
        await end(ws)
    await admitted_again(app)
    tracker: Any = hooks.tracker
    assert not tracker.limit_counts  # nothing left to restate to the store


async def test_a_cancelled_connection_gives_its_count_back() -> None:
    app = client(Echo)
    ws = await WebSocketTestConnection(app.app, app.scope("/ws")).open()
    assert ws.accepted
    ws.cancel()  # what a server does at its own graceful-shutdown timeout
    with pytest.raises(asyncio.CancelledError):
        await ws.wait_closed()
    await admitted_again(app)


async def test_a_send_queue_overflow_gives_its_count_back() -> None:
    _, ws = await blocked_queue_lengths(max_send_queue=3)
    assert ws.events[-1]["code"] == 1008  # type: ignore[typeddict-item]
    await admitted_again(client(Echo))


async def test_an_accept_the_client_never_got_gives_its_count_back() -> None:
    app = app_for(path("ws", Echo))
    events = iter([{"type": "websocket.connect"}])

    async def receive() -> Any:
        return next(events, {"type": "websocket.disconnect", "code": 1006})

    async def send(event: Any) -> None:
        if event["type"] == "websocket.accept":
            raise OSError("the client left during the handshake")

    scope = WebSocketTestClient(app).scope("/ws")
    await app(scope, receive, send)  # type: ignore[arg-type]
    await admitted_again(WebSocketTestClient(app))

