"""Group history over the wire: a real server, ``websockets`` clients, ``ws_since``.

MemoryBackend keeps history per process, so the broadcasts come from an HTTP view
of the same server while the member is away; it comes back offering its last
position and gets exactly what it missed, then live messages.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import LiveServerFactory
from tests.live_server import LiveServer

SETTINGS = {
    "ROOT_WS_URLCONF": "tests.e2e.apps.broadcast_ws",
    "ROOT_URLCONF": "tests.e2e.apps.broadcast_http",
    "WS_BROADCAST": {
        "BACKEND": "django_ws.broadcast.MemoryBackend",
        "HISTORY": {"room-*": {"SIZE": 100, "TTL": 600}},
    },
}


def post(server: LiveServer, path: str, body: str) -> int:
    request = urllib.request.Request(
        server.http_url(path), data=body.encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


async def receive(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


async def test_a_member_that_reconnects_gets_exactly_what_it_missed_then_live(
    live_server_factory: LiveServerFactory,
) -> None:
    server = live_server_factory(SETTINGS)
    async with connect(server.ws_url("/room/room-e2e"), open_timeout=5) as first:
        assert await receive(first) == {"joined": "room-e2e"}
        assert await asyncio.to_thread(post, server, "/broadcast/room-e2e", "0") == 200
        message = await receive(first)
        assert (message["group"], message["offset"], message["data"]) == (
            "room-e2e",
            1,
            {"text": "0"},
        )
        epoch = message["epoch"]

    def post_fifty() -> None:
        for number in range(1, 51):
            assert post(server, "/broadcast/room-e2e", str(number)) == 200

    await asyncio.to_thread(post_fifty)

    offered = quote(json.dumps({"room-e2e": [epoch, 1]}))
    url = server.ws_url(f"/room/room-e2e?ws_since={offered}")
    async with connect(url, open_timeout=5) as again:
        assert await receive(again) == {
            "group": "room-e2e",
            "recovered": True,
            "epoch": epoch,
            "offset": 1,
            "missed": 50,
        }
        replayed = [await receive(again) for _ in range(50)]
        assert replayed == [
            {
                "group": "room-e2e",
                "epoch": epoch,
                "offset": number + 1,
                "data": {"text": str(number)},
            }
            for number in range(1, 51)
        ]
        assert await receive(again) == {"joined": "room-e2e"}
        assert await asyncio.to_thread(post, server, "/broadcast/room-e2e", "live") == 200
        assert await receive(again) == {
            "group": "room-e2e",
            "epoch": epoch,
            "offset": 52,
            "data": {"text": "live"},
        }
        try:
            extra = await asyncio.wait_for(again.recv(), 0.3)
        except asyncio.TimeoutError:
            extra = None
        assert extra is None
