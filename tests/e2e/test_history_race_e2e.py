"""A replay racing live broadcasts, across two server processes on Redis.

A member leaves, misses a long range, and comes back to the *other* process
offering its position while a client of the first process keeps broadcasting:
the member gets the recovery frame, then every message exactly once and in
offset order, the replayed ones before the live ones.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import pytest
from websockets.asyncio.client import ClientConnection, connect

import django_ws
from django_ws.broadcast import get_backend
from tests.conftest import LiveServerFactory
from tests.live_server import LiveServer, PrivateRedis

#: Messages published while the member is away, and while it comes back.
MISSED = 1000
LIVE = 300
#: How many live broadcasts go out before the member reconnects.
LIVE_BEFORE = 30


def race_settings(location: str) -> dict[str, Any]:
    return {
        "ROOT_WS_URLCONF": "tests.e2e.apps.broadcast_ws",
        "ROOT_URLCONF": "tests.e2e.apps.broadcast_http",
        "WS_BROADCAST": {
            "BACKEND": "django_ws.broadcast.RedisBackend",
            "LOCATION": location,
            "OPTIONS": {"TIMEOUT": 2},
            "HISTORY": {"race-*": {"SIZE": 5000, "TTL": 600}},
        },
    }


@pytest.fixture
async def two_servers(
    settings: Any, private_redis: PrivateRedis, live_server_factory: LiveServerFactory
) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    overrides = race_settings(private_redis.url)
    settings.WS_BROADCAST = overrides["WS_BROADCAST"]
    yield live_server_factory(overrides), live_server_factory(overrides)
    await get_backend().stop()


async def receive(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


def broadcast_texts(group: str, texts: list[str]) -> None:
    for text in texts:
        django_ws.broadcast_sync(group, {"text": text})


async def say_each(ws: ClientConnection, texts: list[str], said: asyncio.Event) -> None:
    """Broadcast each text from the server ``ws`` is on, one after the other."""
    for number, text in enumerate(texts, 1):
        await ws.send(json.dumps({"say": text}))
        while (frame := await receive(ws)) != {"ack": text}:
            assert "error" not in frame, frame  # its own copies arrive too
        if number == LIVE_BEFORE:
            said.set()


async def test_a_replay_racing_live_broadcasts_from_another_process(
    two_servers: tuple[LiveServer, LiveServer],
) -> None:
    a, b = two_servers
    group = "race-r"
    async with connect(a.ws_url(f"/room/{group}"), open_timeout=5) as leaving:
        assert await receive(leaving) == {"joined": group}
        await asyncio.to_thread(broadcast_texts, group, ["first"])
        first = await receive(leaving)
        epoch = first["epoch"]
        assert first["offset"] == 1
    missed = [f"missed-{n}" for n in range(MISSED)]
    live = [f"live-{n}" for n in range(LIVE)]
    await asyncio.to_thread(broadcast_texts, group, missed)
    async with connect(a.ws_url(f"/room/{group}"), open_timeout=5) as speaker:
        assert await receive(speaker) == {"joined": group}
        said = asyncio.Event()
        speaking = asyncio.create_task(say_each(speaker, live, said))
        await asyncio.wait_for(said.wait(), 30)
        since = quote(json.dumps({group: [epoch, 1]}))
        url = b.ws_url(f"/room/{group}?ws_since={since}")
        async with connect(url, open_timeout=5, max_queue=None) as back:
            recovery = await receive(back)
            assert recovery["recovered"] is True
            assert recovery["epoch"] == epoch and recovery["offset"] == 1
            assert recovery["missed"] >= MISSED + LIVE_BEFORE
            frames, joined_after = [], None
            while len(frames) < MISSED + LIVE:
                frame = await receive(back)
                if frame == {"joined": group}:
                    joined_after = len(frames)
                else:
                    frames.append(frame)
            # The handler's greeting comes once join returns: after the replay.
            assert joined_after is not None
            assert joined_after >= recovery["missed"]
            await asyncio.wait_for(speaking, 30)
            assert [frame["data"]["text"] for frame in frames] == missed + live
            assert [frame["offset"] for frame in frames] == list(
                range(2, 2 + MISSED + LIVE)
            )
            assert {frame["epoch"] for frame in frames} == {epoch}
            try:
                extra = await asyncio.wait_for(back.recv(), 0.3)
            except asyncio.TimeoutError:
                extra = None
            assert extra is None
