"""The core over the wire: each selected ASGI server serving django-ws, the ``websockets`` client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.e2e.servers import (
    ACCEPT_HEADERS,
    close_seen,
    refusal_status,
    selected_servers,
)
from tests.live_server import LiveServer

WS_IMPLEMENTATIONS = ["websockets", "websockets-sansio"]
URLCONF = {"ROOT_WS_URLCONF": "tests.e2e.apps.core_ws_urls"}
# uvicorn once per WebSocket implementation it has, every other server once.
VARIANTS = [
    (name, implementation)
    for name in selected_servers()
    for implementation in (WS_IMPLEMENTATIONS if name == "uvicorn" else [None])
]


@pytest.fixture(
    scope="module",
    params=VARIANTS,
    ids=[f"{name}-{ws}" if ws else name for name, ws in VARIANTS],
)
def server(request: pytest.FixtureRequest) -> Iterator[LiveServer]:
    """One server for the module (per server and uvicorn ``--ws``): starting is slow.

    The variants follow ``DJANGO_WS_TEST_SERVERS`` like the ``asgi_server``
    fixture, with uvicorn's two WebSocket implementations as two variants.
    """
    name, implementation = request.param
    args = ["--ws", implementation] if implementation else []
    with LiveServer(URLCONF, args, server=name) as live:
        yield live


def open_ws(server: LiveServer, path: str, **options: Any) -> Any:
    return connect(server.ws_url(path), open_timeout=5, close_timeout=5, **options)


async def recv(ws: ClientConnection, timeout: float = 5) -> Any:
    return await asyncio.wait_for(ws.recv(), timeout)


async def recv_json(ws: ClientConnection, timeout: float = 5) -> Any:
    return json.loads(await recv(ws, timeout))


async def closed_with(
    ws: ClientConnection, timeout: float = 5
) -> tuple[int | None, str | None]:
    """Wait for the server's close; return its code and reason."""
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(ws.recv(), timeout)
    return ws.close_code, ws.close_reason


async def log_after(
    server: LiveServer, offset: int, text: str, timeout: float = 5
) -> str:
    """Wait for ``text`` in the server log after ``offset``; return that part."""
    deadline = time.monotonic() + timeout
    while True:
        part = server.log_text()[offset:]
        if text in part:
            return part
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{text!r} not logged within {timeout} s. Log:\n{part}"
            )
        await asyncio.sleep(0.05)


async def test_lifespan_startup_completes(server: LiveServer) -> None:
    """daphne has no lifespan protocol: django-ws must serve without its startup."""
    log = server.log_text()
    if server.server == "uvicorn":
        assert "Application startup complete." in log
    # The servers say "lifespan" only when it fails or is unsupported.
    assert "lifespan" not in log.lower().replace("--lifespan on", "")
    assert "Traceback" not in log
    async with open_ws(server, "/echo") as ws:
        await ws.send(json.dumps("served"))
        assert await recv_json(ws) == {"echo": "served"}


async def test_echo(server: LiveServer) -> None:
    async with open_ws(server, "/echo") as ws:
        await ws.send(json.dumps({"text": "hi"}))
        assert await recv_json(ws) == {"echo": {"text": "hi"}}


async def test_binary_echo(server: LiveServer) -> None:
    async with open_ws(server, "/echo") as ws:
        await ws.send(b"\x00\xffbinary")
        assert await recv(ws) == b"\x00\xffbinary"


async def test_unawaited_sends_arrive_in_order(server: LiveServer) -> None:
    async with open_ws(server, "/burst") as ws:
        await ws.send(json.dumps({"count": 100}))
        frames = [await recv(ws) for _ in range(101)]
    assert frames == [
        json.dumps({"n": n, "pad": ""}, separators=(",", ":")) for n in range(100)
    ] + ["done"]


async def test_unawaited_sends_keep_order_under_back_pressure(
    server: LiveServer,
) -> None:
    """500 KiB at once overflows the server's write buffer: the rest queue, in order."""
    pad = "x" * 1024
    async with open_ws(server, "/burst", max_size=None) as ws:
        await ws.send(json.dumps({"count": 500, "pad": pad}))
        await asyncio.sleep(0.2)  # let the server hit its write buffer limit
        numbers = [json.loads(await recv(ws))["n"] for _ in range(500)]
        assert await recv(ws) == "done"
    assert numbers == list(range(500))


@pytest.mark.parametrize(
    ("path", "args", "kwargs"),
    [
        ("/rooms/7/general?q=1", [], {"room": 7, "name": "general"}),
        ("/items/42?q=1", ["42"], {}),
    ],
)
async def test_route_arguments_and_the_request(
    server: LiveServer, path: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    async with open_ws(
        server, path, additional_headers={"Cookie": "flavour=mint"}
    ) as ws:
        assert await recv_json(ws) == {
            "args": args,
            "kwargs": kwargs,
            "path": path.split("?")[0],
            "query": "1",
            "cookie": "mint",
        }


async def test_an_unknown_path_is_refused_with_404(server: LiveServer) -> None:
    """404 where the server has ``websocket.http.response``; daphne's close-before-accept 403."""
    with pytest.raises(InvalidStatus) as excinfo:
        async with open_ws(server, "/nowhere"):
            pass  # pragma: no cover - refused
    assert excinfo.value.response.status_code == refusal_status(server.server, 404)


async def test_a_crash_closes_1011_logs_the_traceback_and_spares_others(
    server: LiveServer,
) -> None:
    offset = len(server.log_text())
    async with open_ws(server, "/echo") as bystander:
        async with open_ws(server, "/crash") as victim:
            await victim.send(json.dumps("crash"))
            assert await closed_with(victim) == close_seen(
                server.server, 1011, "Internal server error"
            )
        await bystander.send(json.dumps("still here"))
        assert await recv_json(bystander) == {"echo": "still here"}
    log = await log_after(server, offset, "RuntimeError: handler crashed on purpose")
    assert "Error in <Crash '/crash'>\nTraceback (most recent call last):" in log


async def test_invalid_json_closes_with_1007_and_logs_no_traceback(
    server: LiveServer,
) -> None:
    offset = len(server.log_text())
    async with open_ws(server, "/echo") as ws:
        await ws.send("{not json")
        assert await closed_with(ws) == close_seen(server.server, 1007, "Invalid message")
    log = await log_after(server, offset, "Closing <Echo '/echo'>: Invalid JSON:")
    assert (
        "Closing <Echo '/echo'>: Invalid JSON: Expecting property name enclosed in "
        "double quotes: line 1 column 2 (char 1)"
    ) in log
    assert "Traceback" not in log


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["chat.v1", "chat.v2"], "chat.v1"),
        (["chat.v3", "chat.v2"], "chat.v2"),
        (None, None),
    ],
)
async def test_subprotocol_negotiation(
    server: LiveServer, offered: list[str] | None, chosen: str | None
) -> None:
    async with open_ws(server, "/proto", subprotocols=offered) as ws:
        assert ws.subprotocol == chosen
        served_by = "django-ws" if server.server in ACCEPT_HEADERS else None
        assert ws.response.headers.get("X-Served-By") == served_by
        assert await recv_json(ws) == {"subprotocol": chosen}


async def test_an_unsupported_subprotocol_is_accepted_without_one(
    server: LiveServer,
) -> None:
    # websockets refuses a server that picks none of the offered ones, so ask raw.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(
            b"GET /proto HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat.v3\r\n\r\n"
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"sec-websocket-protocol" not in head.lower()


async def test_a_client_vanishing_mid_send_logs_nothing(server: LiveServer) -> None:
    offset = len(server.log_text())
    async with open_ws(server, "/stream", max_size=None) as ws:
        for _ in range(3):
            await recv(ws)
        ws.transport.abort()  # the client vanishes: no close frame, TCP reset
    log = await log_after(server, offset, "stream closed with")
    assert "Traceback" not in log
    assert "Error" not in log
    assert "Exception" not in log
