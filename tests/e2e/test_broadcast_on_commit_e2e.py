"""``broadcast_on_commit`` across processes: a transaction here, a member on a server.

The test process writes in a transaction (in a worker thread, as a sync view
would) and calls ``broadcast_on_commit``; a ``websockets`` client is a member of
the group on a real server process. Both use the Redis backend on the shared
Redis, since the memory backend cannot cross processes. Absence after a rollback
is proven with a marker that the same thread broadcasts next: Redis delivers one
publisher's messages in order, so it must be the client's next message.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db import transaction
from websockets.asyncio.client import ClientConnection, connect

import django_ws
from django_ws.broadcast import get_backend
from django_ws.broadcast.redis import RedisBackend
from tests.conftest import LiveServerFactory

transactional = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    """Raised inside an ``atomic`` block to roll it back."""


@pytest.fixture
async def redis_here_and_there(
    settings: Any, redis_url: str
) -> AsyncIterator[dict[str, Any]]:
    """Point this process at the shared Redis; return the same ``WS_BROADCAST``.

    Pub/sub channels are shared by every database of a Redis server: a prefix of
    the test's own keeps concurrent runs apart.
    """
    config = {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": redis_url,
        "OPTIONS": {"TIMEOUT": 2, "PREFIX": f"test-{uuid.uuid4().hex[:8]}"},
    }
    settings.WS_BROADCAST = config
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    yield config
    await backend.stop()


@pytest.fixture
async def member(
    live_server_factory: LiveServerFactory,
    redis_here_and_there: dict[str, Any],
    asgi_server: str,
) -> AsyncIterator[ClientConnection]:
    """A client in the group ``orders`` on a server process (greeting consumed)."""
    server = live_server_factory(
        {
            "ROOT_WS_URLCONF": "tests.e2e.apps.broadcast_ws",
            "WS_BROADCAST": redis_here_and_there,
        },
        server=asgi_server,
    )
    async with connect(
        server.ws_url("/room/orders"), open_timeout=5, close_timeout=2
    ) as ws:
        assert await recv_json(ws) == {"joined": "orders"}
        yield ws


async def recv_json(ws: ClientConnection, timeout: float = 5) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


def in_thread(function: Callable[[], None]) -> Any:
    """Run ``function`` in the worker thread that sync views use."""
    return sync_to_async(function)()


@transactional
async def test_a_commit_here_reaches_the_member_on_the_server(
    member: ClientConnection,
) -> None:
    def commit() -> None:
        with transaction.atomic():
            user = get_user_model().objects.create_user("alice")
            django_ws.broadcast_on_commit("orders", {"saved": user.pk})
            django_ws.broadcast_sync("orders", "during the transaction")
        django_ws.broadcast_sync("orders", "marker")

    await in_thread(commit)
    user = await sync_to_async(get_user_model().objects.get)(username="alice")
    assert await recv_json(member) == "during the transaction"
    assert await recv_json(member) == {"saved": user.pk}
    assert await recv_json(member) == "marker"  # once


@transactional
async def test_a_rollback_here_sends_the_server_nothing(
    member: ClientConnection,
) -> None:
    def roll_back_then_mark() -> None:
        try:
            with transaction.atomic():
                get_user_model().objects.create_user("alice")
                django_ws.broadcast_on_commit("orders", {"saved": "alice"})
                raise Rollback
        except Rollback:
            pass
        django_ws.broadcast_sync("orders", "marker")

    await in_thread(roll_back_then_mark)
    assert await recv_json(member) == "marker"
    exists = get_user_model().objects.filter(username="alice").exists
    assert not await sync_to_async(exists)()
