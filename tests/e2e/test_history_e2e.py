"""Group history over the wire: a real server, ``websockets`` clients, ``ws_since``.

MemoryBackend keeps history per process, so the broadcasts come from an HTTP view
of the same server while the member is away; it comes back offering its last
position and gets exactly what it missed, then live messages. With RedisBackend,
two server processes share a private Redis and this process broadcasts with
``broadcast_sync``, as a script would; the member comes back to the other process.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect

import django_ws
from django_ws.broadcast import get_backend
from tests.conftest import LiveServerFactory
from tests.live_server import LiveServer, PrivateRedis

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


# Redis: two processes ----------------------------------------------------------------


def redis_history_settings(location: str) -> dict[str, Any]:
    return {
        **SETTINGS,
        "WS_BROADCAST": {
            "BACKEND": "django_ws.broadcast.RedisBackend",
            "LOCATION": location,
            "OPTIONS": {"TIMEOUT": 2, "RECONNECT_MAX": 1},
            "HISTORY": {
                "room-*": {"SIZE": 100, "TTL": 600},
                "small-*": {"SIZE": 5, "TTL": 600},
            },
        },
    }


@pytest.fixture
async def redis_history(
    settings: Any, private_redis: PrivateRedis, live_server_factory: LiveServerFactory
) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    """Two servers on one Redis; this process broadcasts with the same settings."""
    overrides = redis_history_settings(private_redis.url)
    settings.WS_BROADCAST = overrides["WS_BROADCAST"]
    servers = (live_server_factory(overrides), live_server_factory(overrides))
    yield servers
    await get_backend().stop()


def broadcast_texts(group: str, texts: list[str]) -> None:
    for text in texts:
        django_ws.broadcast_sync(group, {"text": text})


def offering(group: str, epoch: str, offset: int) -> str:
    return "?ws_since=" + quote(json.dumps({group: [epoch, offset]}))


async def test_redis_a_member_moving_to_another_process_gets_exactly_what_it_missed(
    redis_history: tuple[LiveServer, LiveServer],
) -> None:
    a, b = redis_history
    async with (
        connect(a.ws_url("/room/room-r"), open_timeout=5) as stays,
        connect(a.ws_url("/room/room-r"), open_timeout=5) as leaves,
    ):
        assert await receive(stays) == {"joined": "room-r"}
        assert await receive(leaves) == {"joined": "room-r"}
        await asyncio.to_thread(broadcast_texts, "room-r", ["0"])
        first = await receive(leaves)
        epoch = first["epoch"]
        assert first == {
            "group": "room-r",
            "epoch": epoch,
            "offset": 1,
            "data": {"text": "0"},
        }
    expected = [
        {"group": "room-r", "epoch": epoch, "offset": n + 1, "data": {"text": str(n)}}
        for n in range(1, 51)
    ]
    async with connect(a.ws_url("/room/room-r"), open_timeout=5) as stays:
        assert await receive(stays) == {"joined": "room-r"}
        fifty = [str(n) for n in range(1, 51)]
        await asyncio.to_thread(broadcast_texts, "room-r", fifty)
        assert [await receive(stays) for _ in range(50)] == expected
        url = b.ws_url("/room/room-r" + offering("room-r", epoch, 1))
        async with connect(url, open_timeout=5) as again:
            assert await receive(again) == {
                "group": "room-r",
                "recovered": True,
                "epoch": epoch,
                "offset": 1,
                "missed": 50,
            }
            assert [await receive(again) for _ in range(50)] == expected
            assert await receive(again) == {"joined": "room-r"}
            await asyncio.to_thread(broadcast_texts, "room-r", ["live"])
            live = {
                "group": "room-r",
                "epoch": epoch,
                "offset": 52,
                "data": {"text": "live"},
            }
            assert await receive(again) == live
            assert await receive(stays) == live
            await nothing_more(again)
            await nothing_more(stays)


async def test_redis_lost_keys_give_a_new_epoch_and_no_replay(
    redis_history: tuple[LiveServer, LiveServer], private_redis: PrivateRedis
) -> None:
    _, b = redis_history
    await asyncio.to_thread(broadcast_texts, "room-k", ["1", "2"])
    old, _ = django_ws.position_sync("room-k")
    with redis.Redis.from_url(private_redis.url) as other:
        assert other.delete(*other.keys("*room-k*")) == 3
    url = b.ws_url("/room/room-k" + offering("room-k", old, 1))
    async with connect(url, open_timeout=5) as member:
        frame = await receive(member)
        assert frame["epoch"] != old
        assert frame == {
            "group": "room-k",
            "recovered": False,
            "epoch": frame["epoch"],
            "offset": 0,
            "missed": 0,
        }
        assert await receive(member) == {"joined": "room-k"}
        await nothing_more(member)


async def test_redis_a_gap_longer_than_the_history_gives_no_replay(
    redis_history: tuple[LiveServer, LiveServer],
) -> None:
    a, _ = redis_history
    await asyncio.to_thread(broadcast_texts, "small-t", [str(n) for n in range(1, 9)])
    epoch, offset = django_ws.position_sync("small-t")
    assert offset == 8
    url = a.ws_url("/room/small-t" + offering("small-t", epoch, 2))  # 3..8: SIZE is 5
    async with connect(url, open_timeout=5) as member:
        assert await receive(member) == {
            "group": "small-t",
            "recovered": False,
            "epoch": epoch,
            "offset": 8,
            "missed": 0,
        }
        assert await receive(member) == {"joined": "small-t"}
        await nothing_more(member)


def publish_retrying(group: str, texts: list[str], deadline: float) -> None:
    """Broadcast each text, retrying on ``BroadcastError`` as careful publishers do."""
    for text in texts:
        while True:
            try:
                django_ws.broadcast_sync(group, {"text": text})
                break
            except django_ws.BroadcastError:
                assert time.monotonic() < deadline, "Redis did not come back"
                time.sleep(0.05)


async def frames_until(ws: ClientConnection, last: str) -> list[Any]:
    frames = []
    while True:
        frame = await receive(ws)
        frames.append(frame)
        if frame.get("data") == {"text": last}:
            return frames


async def test_redis_restarted_mid_stream_members_get_every_accepted_message_once(
    redis_history: tuple[LiveServer, LiveServer], private_redis: PrivateRedis
) -> None:
    a, b = redis_history
    async with (
        connect(a.ws_url("/room/room-s"), open_timeout=5) as on_a,
        connect(b.ws_url("/room/room-s"), open_timeout=5) as on_b,
    ):
        for member in (on_a, on_b):
            assert await receive(member) == {"joined": "room-s"}
        texts = [str(n) for n in range(1, 61)]
        deadline = time.monotonic() + 30
        await asyncio.to_thread(publish_retrying, "room-s", texts[:20], deadline)
        await asyncio.to_thread(private_redis.stop)

        async def restart() -> None:
            await asyncio.sleep(0.5)
            await asyncio.to_thread(private_redis.start)

        restarting = asyncio.create_task(restart())
        await asyncio.to_thread(publish_retrying, "room-s", texts[20:], deadline)
        await restarting
        for member in (on_a, on_b):
            frames = await frames_until(member, "60")
            old = frames[0]["epoch"]
            assert frames[:20] == [
                {"group": "room-s", "epoch": old, "offset": n, "data": {"text": str(n)}}
                for n in range(1, 21)
            ]
            new = frames[20]["epoch"]
            assert new != old  # the private Redis keeps nothing across a restart
            assert frames[20:] == [
                {
                    "group": "room-s",
                    "recovered": False,
                    "epoch": new,
                    "offset": 0,
                    "missed": 0,
                },
                *(
                    {
                        "group": "room-s",
                        "epoch": new,
                        "offset": n - 20,
                        "data": {"text": str(n)},
                    }
                    for n in range(21, 61)
                ),
            ]
            await nothing_more(member)


async def nothing_more(ws: ClientConnection) -> None:
    try:
        extra = await asyncio.wait_for(ws.recv(), 0.3)
    except asyncio.TimeoutError:
        extra = None
    assert extra is None
