"""Broadcast over the wire: two server processes sharing groups, ``websockets`` clients.

With the Redis backend, two server processes share a private Redis: a broadcast
from a socket on either, from a view, or from ``broadcast_sync`` in a plain
Python process reaches the members on both. The Redis is stopped and started
again under them, and one server is killed, to check the fault behaviour.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import redis
from django.contrib.auth import get_user_model
from django.test import Client
from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from tests.conftest import LiveServerFactory
from tests.live_server import REPO_ROOT, LiveServer, PrivateRedis

PRESENCE_TTL = 2
APPS = {
    "ROOT_WS_URLCONF": "tests.e2e.apps.broadcast_ws",
    "ROOT_URLCONF": "tests.e2e.apps.broadcast_http",
    "WS_MIDDLEWARE": ["django_ws.middleware.AuthMiddleware"],
}


def redis_overrides(location: str) -> dict[str, Any]:
    return {
        **APPS,
        "WS_BROADCAST": {
            "BACKEND": "django_ws.broadcast.RedisBackend",
            "LOCATION": location,
            "OPTIONS": {"TIMEOUT": 2, "PRESENCE_TTL": PRESENCE_TTL, "RECONNECT_MAX": 1},
        },
    }


@pytest.fixture
def redis_settings(private_redis: PrivateRedis) -> dict[str, Any]:
    return redis_overrides(private_redis.url)


@pytest.fixture
def two_servers(
    live_server_factory: LiveServerFactory,
    redis_settings: dict[str, Any],
    asgi_server: str,
) -> tuple[LiveServer, LiveServer]:
    return (
        live_server_factory(redis_settings, server=asgi_server),
        live_server_factory(redis_settings, server=asgi_server),
    )


@pytest.fixture
async def members() -> AsyncIterator[Callable[..., Any]]:
    """Open room members (greeting consumed); all closed after the test."""
    async with AsyncExitStack() as stack:

        async def open_member(
            server: LiveServer, path: str, cookie: str = ""
        ) -> ClientConnection:
            headers = {"Cookie": cookie} if cookie else None
            ws = await stack.enter_async_context(
                connect(
                    server.ws_url(path),
                    open_timeout=5,
                    close_timeout=2,
                    additional_headers=headers,
                )
            )
            assert await recv_json(ws) == {"joined": path.rsplit("/", 1)[1]}
            return ws

        yield open_member


async def recv_json(ws: ClientConnection, timeout: float = 5) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def say(ws: ClientConnection, text: str) -> None:
    """Broadcast ``text`` from ``ws``'s handler and check the sender's own copy and ack."""
    await ws.send(json.dumps({"say": text}))
    assert await recv_json(ws) == {"text": text}
    assert await recv_json(ws) == {"ack": text}


async def nothing_pending(ws: ClientConnection) -> None:
    """Check that nothing is queued for ``ws``: a ping's pong comes next."""
    await ws.send('{"ping": "check"}')
    assert await recv_json(ws) == {"pong": "check"}


async def presence_of(ws: ClientConnection) -> Any:
    await ws.send('{"presence": true}')
    return await recv_json(ws)


async def messages_until(
    ws: ClientConnection, last: Any, timeout: float = 10
) -> list[Any]:
    """Return what ``ws`` receives before ``last`` (which is consumed)."""
    before: list[Any] = []
    deadline = time.monotonic() + timeout
    while (
        message := await recv_json(ws, max(0.1, deadline - time.monotonic()))
    ) != last:
        before.append(message)
    return before


async def delivered(
    sender: ClientConnection, receiver: ClientConnection, text: str
) -> bool:
    """Say ``text`` from ``sender``; tell whether it reached ``receiver`` (skipping probes)."""
    await sender.send(json.dumps({"say": text}))
    await messages_until(sender, {"text": text})
    if await recv_json(sender) != {"ack": text}:
        return False
    try:
        await messages_until(receiver, {"text": text}, timeout=0.5)
    except asyncio.TimeoutError:
        return False
    return True


def broadcast_from_a_script(
    settings: dict[str, Any], group: str, texts: list[str]
) -> None:
    """Run ``broadcast_sync`` in a plain Python process, as a cron job would."""
    code = (
        "import django, django_ws\n"
        "django.setup()\n"
        f"for text in {texts!r}:\n"
        f"    django_ws.broadcast_sync({group!r}, {{'text': text}})\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DJANGO_WS_TEST_SETTINGS": json.dumps(settings),
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def post(server: LiveServer, path: str, body: str) -> tuple[int, str]:
    request = urllib.request.Request(
        server.http_url(path), data=body.encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


# Redis: two processes --------------------------------------------------------------


async def test_broadcasts_reach_every_member_on_both_processes_once_in_order(
    two_servers: tuple[LiveServer, LiveServer],
    redis_settings: dict[str, Any],
    members: Callable[..., Any],
) -> None:
    a, b = two_servers
    a1, a2 = await members(a, "/room/lobby"), await members(a, "/dsl/lobby")
    b1, b2 = await members(b, "/dsl/lobby"), await members(b, "/room/lobby")
    everyone = (a1, a2, b1, b2)

    for text in ("a-1", "a-2", "a-3"):
        await say(a1, text)
    for member in (a2, b1, b2):
        assert [await recv_json(member) for _ in range(3)] == [
            {"text": "a-1"},
            {"text": "a-2"},
            {"text": "a-3"},
        ]

    for text in ("b-1", "b-2"):
        await say(b1, text)
    for member in (a1, a2, b2):
        assert [await recv_json(member) for _ in range(2)] == [
            {"text": "b-1"},
            {"text": "b-2"},
        ]

    await asyncio.to_thread(
        broadcast_from_a_script, redis_settings, "lobby", ["s-1", "s-2"]
    )
    for member in everyone:
        assert [await recv_json(member) for _ in range(2)] == [
            {"text": "s-1"},
            {"text": "s-2"},
        ]

    assert await asyncio.to_thread(post, b, "/broadcast/lobby", "from a view") == (
        200,
        "sent",
    )
    for member in everyone:
        assert await recv_json(member) == {"text": "from a view"}

    await b2.send(json.dumps({"say": "not to the sender", "exclude_me": True}))
    assert await recv_json(b2) == {"ack": "not to the sender"}
    for member in (a1, a2, b1):
        assert await recv_json(member) == {"text": "not to the sender"}
    for member in everyone:
        await nothing_pending(member)


async def test_leaving_and_disconnecting_stop_delivery(
    two_servers: tuple[LiveServer, LiveServer],
    members: Callable[..., Any],
    private_redis: PrivateRedis,
) -> None:
    a, b = two_servers
    a1, a2 = await members(a, "/room/lobby"), await members(a, "/room/lobby")
    b1, b2 = await members(b, "/room/lobby"), await members(b, "/room/lobby")
    assert await presence_of(a1) == {"count": 4, "users": []}

    await b2.send('{"leave": true}')
    assert await recv_json(b2) == {"left": "lobby"}
    await a2.close()
    await say(a1, "after")
    assert await recv_json(b1) == {"text": "after"}
    await nothing_pending(b2)  # b1 got it, so b2 would have got it by now
    assert await presence_of(a1) == {"count": 2, "users": []}

    # Once b has no member left, it no longer subscribes to the group.
    channel = "django_ws:g:lobby"
    with redis.Redis.from_url(private_redis.url) as client:
        assert client.pubsub_numsub(channel) == [(channel.encode(), 2)]
        await b1.send('{"leave": true}')
        assert await recv_json(b1) == {"left": "lobby"}
        assert client.pubsub_numsub(channel) == [(channel.encode(), 1)]


async def test_redis_restart_drops_no_socket_and_delivery_resumes(
    two_servers: tuple[LiveServer, LiveServer],
    members: Callable[..., Any],
    private_redis: PrivateRedis,
) -> None:
    a, b = two_servers
    a1, a2 = await members(a, "/room/lobby"), await members(a, "/dsl/lobby")
    b1, b2 = await members(b, "/dsl/lobby"), await members(b, "/room/lobby")
    everyone = (a1, a2, b1, b2)
    await say(a1, "before")
    for member in (a2, b1, b2):
        assert await recv_json(member) == {"text": "before"}

    await asyncio.to_thread(private_redis.stop)
    await a1.send('{"say": "while down"}')
    assert await recv_json(a1) == {"text": "while down"}  # a's own members still get it
    assert await recv_json(a1) == {"error": "broadcast failed"}
    assert await recv_json(a2) == {"text": "while down"}
    for member in everyone:
        await nothing_pending(member)

    await asyncio.to_thread(private_redis.start)
    # Each server reconnects on its own backoff: probe both ways until both deliver.
    for sender, receiver in ((a1, b1), (b1, a1)):
        deadline = time.monotonic() + 20
        probe = 0
        while not await delivered(sender, receiver, f"probe-{probe}"):
            assert time.monotonic() < deadline, "delivery did not resume"
            probe += 1
            await asyncio.sleep(0.1)

    await say(a1, "after")
    for member in (a2, b1, b2):
        missed = await messages_until(member, {"text": "after"})
        assert all(message["text"].startswith("probe-") for message in missed), missed
    deadline = time.monotonic() + 10
    while (found := await presence_of(a1)) != {"count": 4, "users": []}:
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.2)
    for member in everyone:
        await nothing_pending(member)
        assert member.state is State.OPEN
    for server in (a, b):
        log = server.log_text()
        # Lines, not occurrences: daphne's logging prints each record a second time.
        lines = log.splitlines()
        for text in ("Lost the connection to Redis at", "Reconnected to Redis at"):
            said = f"{text} {private_redis.url}"
            assert sum(line.startswith(said) for line in lines) == 1, log


@pytest.fixture
def session_cookies(transactional_db: None) -> dict[str, tuple[int, str]]:
    """Log alice and bob in; return each one's pk and session cookie."""
    cookies = {}
    for username in ("alice", "bob"):
        user = get_user_model().objects.create_user(username)
        client = Client()
        client.force_login(user)
        cookies[username] = (user.pk, f"sessionid={client.cookies['sessionid'].value}")
    return cookies


async def test_presence_counts_both_processes_and_drops_a_killed_one(
    two_servers: tuple[LiveServer, LiveServer],
    members: Callable[..., Any],
    session_cookies: dict[str, tuple[int, str]],
) -> None:
    a, b = two_servers
    (alice, alice_cookie), (bob, bob_cookie) = (
        session_cookies["alice"],
        session_cookies["bob"],
    )
    on_a = await members(a, "/room/lobby", alice_cookie)
    await members(b, "/room/lobby", bob_cookie)
    await members(b, "/dsl/lobby")  # anonymous
    assert await presence_of(on_a) == {"count": 3, "users": sorted([alice, bob])}

    await asyncio.to_thread(b.kill)
    killed = time.monotonic()
    while (found := await presence_of(on_a)) != {"count": 1, "users": [alice]}:
        # PRESENCE_TTL is the documented bound; the rest is slack for a busy machine.
        assert time.monotonic() - killed < PRESENCE_TTL + 5, found
        await asyncio.sleep(0.1)


# Memory: one process ----------------------------------------------------------------


async def test_memory_backend_in_one_process(
    live_server_factory: LiveServerFactory, members: Callable[..., Any], asgi_server: str
) -> None:
    server = live_server_factory(APPS, server=asgi_server)
    m1, m2, m3 = [
        await members(server, path)
        for path in ("/room/lobby", "/dsl/lobby", "/room/lobby")
    ]
    for text in ("1", "2", "3"):
        await say(m1, text)
    for member in (m2, m3):
        assert [await recv_json(member) for _ in range(3)] == [
            {"text": "1"},
            {"text": "2"},
            {"text": "3"},
        ]
    assert await asyncio.to_thread(post, server, "/broadcast/lobby", "from a view") == (
        200,
        "sent",
    )
    for member in (m1, m2, m3):
        assert await recv_json(member) == {"text": "from a view"}
    assert await presence_of(m1) == {"count": 3, "users": []}

    await m2.send('{"leave": true}')
    assert await recv_json(m2) == {"left": "lobby"}
    await m3.close()
    await say(m1, "after")
    await nothing_pending(m2)
    assert await presence_of(m1) == {"count": 1, "users": []}
