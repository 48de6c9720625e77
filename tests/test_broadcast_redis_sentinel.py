"""``RedisBackend`` through Redis Sentinel: a master, a replica, one sentinel.

The backend asks the sentinel for the master on every connection, so groups,
history and presence work as on one Redis; when the master is killed, the
sentinel promotes the replica and members miss nothing of a group with history.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

import django_ws
from django_ws.broadcast import Presence, get_backend
from django_ws.broadcast.redis import RedisBackend
from tests.broadcast_support import joined, room_client
from tests.redis_sentinel import SERVICE, PrivateRedisSentinel


def sentinel_settings(sentinel: PrivateRedisSentinel) -> dict[str, Any]:
    return {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": "redis://master/0",  # the database; the sentinel names the host
        "OPTIONS": {
            "SENTINELS": sentinel.sentinels,
            "SERVICE": SERVICE,
            "PREFIX": f"test-{uuid.uuid4().hex[:8]}",
            "TIMEOUT": 1,
            "RECONNECT_MAX": 0.5,
        },
        "HISTORY": {"room-*": {"SIZE": 100, "TTL": 600}},
    }


@pytest.fixture
async def backend(
    settings: Any, private_redis_sentinel: PrivateRedisSentinel
) -> AsyncIterator[RedisBackend]:
    settings.WS_BROADCAST = sentinel_settings(private_redis_sentinel)
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    await backend.start()
    yield backend
    await backend.stop()
    assert backend.member_count() == 0


async def test_groups_history_and_presence_through_the_sentinel(
    backend: RedisBackend,
) -> None:
    client = room_client()
    async with (
        client.connect("/class/lobby") as a,
        client.connect("/class/room-s") as b,
    ):
        await joined(a), await joined(b)
        await django_ws.broadcast("lobby", "hi")
        assert await a.receive_json() == "hi"
        await asyncio.to_thread(django_ws.broadcast_sync, "room-s", "kept")
        epoch, offset = await django_ws.position("room-s")
        assert offset == 1
        assert await b.receive_json() == {
            "group": "room-s",
            "epoch": epoch,
            "offset": 1,
            "data": "kept",
        }
        assert await django_ws.presence("lobby") == Presence(count=1, users=[])


def publish_retrying(group: str, numbers: range, deadline: float) -> int:
    retried = 0
    for number in numbers:
        while True:
            try:
                django_ws.broadcast_sync(group, number)
                break
            except django_ws.BroadcastError:
                retried += 1
                assert time.monotonic() < deadline, "no master came back"
                time.sleep(0.05)
    return retried


@pytest.mark.newest_env
async def test_a_killed_master_fails_over_and_members_miss_nothing(
    backend: RedisBackend, private_redis_sentinel: PrivateRedisSentinel
) -> None:
    async with room_client().connect("/class/room-f") as member:
        await joined(member)
        deadline = time.monotonic() + 60
        await asyncio.to_thread(publish_retrying, "room-f", range(1, 11), deadline)
        # What the master acknowledged may not be on the replica yet (asynchronous
        # replication): wait, so that "accepted" means "survives the failover".
        await asyncio.to_thread(private_redis_sentinel.wait_replicated)
        killed = private_redis_sentinel.kill_master()
        retried = await asyncio.to_thread(
            publish_retrying, "room-f", range(11, 31), deadline
        )
        assert retried > 0
        assert private_redis_sentinel.current_master() != killed
        frames = [await member.receive_json(timeout=30) for _ in range(30)]
        epoch = frames[0]["epoch"]
        assert frames == [
            {"group": "room-f", "epoch": epoch, "offset": n, "data": n}
            for n in range(1, 31)
        ]
        await member.assert_nothing_received(0.2)


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"SENTINELS": [("127.0.0.1", 26379)]},
            "WS_BROADCAST['OPTIONS']['SERVICE'] must name the master that the "
            "sentinels monitor (e.g. 'mymaster'), got None.",
        ),
        (
            {"SERVICE": "mymaster"},
            "WS_BROADCAST['OPTIONS']['SENTINELS'] must be a non-empty list of "
            "(host, port) pairs such as [('10.0.0.1', 26379), ('10.0.0.2', 26379)], "
            "got None.",
        ),
        (
            {"SENTINELS": ["127.0.0.1:26379"], "SERVICE": "mymaster"},
            "WS_BROADCAST['OPTIONS']['SENTINELS'] must be a non-empty list of "
            "(host, port) pairs such as [('10.0.0.1', 26379), ('10.0.0.2', 26379)]; "
            "'127.0.0.1:26379' is not one.",
        ),
        (
            {"SENTINELS": [("h", 1)], "SERVICE": "m", "CLUSTER": True},
            "WS_BROADCAST['OPTIONS'] has both 'CLUSTER' and 'SENTINELS': a Redis "
            "Cluster fails over by itself; keep one.",
        ),
    ],
)
def test_bad_sentinel_options_fail_at_configuration(
    settings: Any, options: dict[str, Any], message: str
) -> None:
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": "redis://master/0",
        "OPTIONS": options,
    }
    with pytest.raises(ImproperlyConfigured) as excinfo:
        django_ws.get_websocket_application()
    assert str(excinfo.value) == message
