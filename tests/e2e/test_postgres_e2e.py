"""PostgresBackend across processes: two uvicorn servers, ``websockets`` clients.

Members on both servers; broadcasts come from a socket, from a view inside a
transaction (committed, and rolled back), and from a sync script run as a
process of its own: every member gets each once, in order. A 100 KB message
(over the 8000-byte NOTIFY limit) arrives whole. Then a private PostgreSQL is
stopped and started mid-stream while this process keeps publishing, retrying
on ``BroadcastError``: members end with every accepted message once, in order.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from websockets.asyncio.client import ClientConnection, connect

import django_ws
from django_ws.broadcast import get_backend
from tests.conftest import LiveServerFactory
from tests.live_server import REPO_ROOT, LiveServer
from tests.postgres_support import (  # noqa: F401 - fixtures
    postgres_alias,
    postgres_settings,
    private_postgres,
)
from tests.private_postgres import PrivatePostgres

HISTORY = {"room-*": {"SIZE": 100, "TTL": 600}}
BIG = "é" * 50_000  # 100 KB of UTF-8


def server_settings(alias: str, prefix: str) -> dict[str, Any]:
    config = postgres_settings(alias, PREFIX=prefix, TIMEOUT=2, RECONNECT_MAX=0.5)
    return {
        "ROOT_WS_URLCONF": "tests.e2e.apps.broadcast_ws",
        "ROOT_URLCONF": "tests.e2e.apps.postgres_http",
        # The test process's own (the private cluster's port is chosen there).
        "DATABASES": json.loads(json.dumps(django_settings.DATABASES)),
        "WS_BROADCAST": {**config, "HISTORY": HISTORY},
    }


async def two_servers(
    settings: Any, factory: LiveServerFactory, alias: str
) -> tuple[dict[str, Any], LiveServer, LiveServer]:
    overrides = server_settings(alias, postgres_settings(alias)["OPTIONS"]["PREFIX"])
    settings.WS_BROADCAST = overrides["WS_BROADCAST"]
    a = await asyncio.to_thread(factory, overrides)
    b = await asyncio.to_thread(factory, overrides)
    return overrides, a, b


@pytest.fixture
async def on_postgres(
    settings: Any, postgres_alias: str, live_server_factory: LiveServerFactory
) -> AsyncIterator[tuple[dict[str, Any], LiveServer, LiveServer]]:
    yield await two_servers(settings, live_server_factory, postgres_alias)
    await get_backend().stop()


def post(server: LiveServer, path: str, body: str) -> str:
    request = urllib.request.Request(
        server.http_url(path), data=body.encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


def run_script(overrides: dict[str, Any], group: str, texts: list[str]) -> None:
    """Broadcast ``texts`` from a process of its own, as a management script would."""
    code = (
        "import sys, django; django.setup(); import django_ws\n"
        "for text in sys.argv[2:]:\n"
        "    django_ws.broadcast_sync(sys.argv[1], {'text': text})\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DJANGO_WS_TEST_SETTINGS": json.dumps(overrides),
        "PYTHONPATH": str(REPO_ROOT),
    }
    subprocess.run(
        [sys.executable, "-c", code, group, *texts],
        env=env,
        cwd=REPO_ROOT,
        check=True,
        timeout=60,
    )


async def receive(ws: ClientConnection, timeout: float = 10) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def texts_until(ws: ClientConnection, last: str) -> list[Any]:
    """Return the data texts (with offsets, for history) received up to ``last``."""
    received = []
    while True:
        frame = await receive(ws)
        if "ack" in frame:
            continue
        received.append(frame)
        data = frame.get("data", frame)
        if data == {"text": last}:
            return received


async def nothing_more(ws: ClientConnection) -> None:
    """Assert that nothing but acks of the member's own ``say`` arrives."""
    while True:
        try:
            extra = await asyncio.wait_for(ws.recv(), 0.3)
        except asyncio.TimeoutError:
            return
        assert "ack" in json.loads(extra), extra


@pytest.mark.parametrize("group", ["chat", "room-p"])
async def test_broadcasts_from_a_socket_a_view_and_a_script_arrive_once_in_order(
    on_postgres: tuple[dict[str, Any], LiveServer, LiveServer], group: str
) -> None:
    overrides, a, b = on_postgres
    async with (
        connect(a.ws_url(f"/room/{group}"), open_timeout=5, max_size=2**21) as on_a,
        connect(b.ws_url(f"/room/{group}"), open_timeout=5, max_size=2**21) as on_b,
    ):
        for member in (on_a, on_b):
            assert await receive(member) == {"joined": group}
        frames: dict[ClientConnection, list[Any]] = {on_a: [], on_b: []}

        async def everyone_got(text: str) -> None:
            # Plain groups keep each publisher's order (not one order across
            # publishers): each step waits for its message before the next.
            for member in (on_a, on_b):
                frames[member] += await texts_until(member, text)

        await on_a.send(json.dumps({"say": "socket"}))
        await everyone_got("socket")
        assert await asyncio.to_thread(post, b, f"/tx/{group}/commit", "view") == "committed"
        rolled_back = await asyncio.to_thread(post, a, f"/tx/{group}/rollback", "never")
        assert rolled_back == "rolled back"
        await asyncio.to_thread(run_script, overrides, group, ["script 1", "script 2"])
        await everyone_got("script 2")
        assert await asyncio.to_thread(post, a, f"/broadcast/{group}", BIG) == "sent"
        await everyone_got(BIG)
        await on_b.send(json.dumps({"say": "last"}))
        await everyone_got("last")
        expected = ["socket", "view", "script 1", "script 2", BIG, "last"]
        for member in (on_a, on_b):
            if group == "chat":
                assert frames[member] == [{"text": text} for text in expected]
            else:
                epoch = frames[member][0]["epoch"]
                assert frames[member] == [
                    {"group": group, "epoch": epoch, "offset": n, "data": {"text": text}}
                    for n, text in enumerate(expected, 1)
                ]
            await nothing_more(member)


def publish_retrying(group: str, texts: list[str], deadline: float) -> None:
    """Broadcast each text, retrying on ``BroadcastError`` as careful publishers do."""
    for text in texts:
        while True:
            try:
                django_ws.broadcast_sync(group, {"text": text})
                break
            except django_ws.BroadcastError:
                assert time.monotonic() < deadline, "PostgreSQL did not come back"
                time.sleep(0.05)


@pytest.mark.newest_env
async def test_postgres_restarted_mid_stream_members_get_every_message_once(
    settings: Any,
    private_postgres: PrivatePostgres,
    live_server_factory: LiveServerFactory,
) -> None:
    _, a, b = await two_servers(settings, live_server_factory, "postgres_private")
    try:
        async with (
            connect(a.ws_url("/room/room-s"), open_timeout=5) as on_a,
            connect(b.ws_url("/room/room-s"), open_timeout=5) as on_b,
        ):
            for member in (on_a, on_b):
                assert await receive(member) == {"joined": "room-s"}
            texts = [str(n) for n in range(1, 61)]
            deadline = time.monotonic() + 60
            await asyncio.to_thread(publish_retrying, "room-s", texts[:20], deadline)
            await asyncio.to_thread(private_postgres.stop)

            async def restart() -> None:
                await asyncio.sleep(0.5)
                await asyncio.to_thread(private_postgres.start)

            restarting = asyncio.create_task(restart())
            await asyncio.to_thread(publish_retrying, "room-s", texts[20:], deadline)
            await restarting
            for member in (on_a, on_b):
                frames = await texts_until(member, "60")
                epoch = frames[0]["epoch"]
                # PostgreSQL keeps its tables across a restart: same epoch, no gap.
                assert frames == [
                    {"group": "room-s", "epoch": epoch, "offset": n, "data": {"text": str(n)}}
                    for n in range(1, 61)
                ]
                await nothing_more(member)
            # Members that joined before the restart still talk across processes.
            await on_a.send(json.dumps({"say": "after"}))
            assert (await texts_until(on_b, "after"))[-1]["offset"] == 61
    finally:
        await get_backend().stop()
