"""Redis Cluster over the wire: two uvicorn processes, a master killed mid-stream.

Both servers run ``RedisBackend`` with ``CLUSTER`` on a private 3-master,
3-replica cluster; members on each server are in one history group per shard,
and this process publishes with ``broadcast_sync`` (a sync ``RedisCluster``
client), retrying on ``BroadcastError`` as careful publishers do. One master is
killed with SIGKILL; its replica takes over, the servers subscribe again on it
and repair from the history it replicated, so every member ends with every
accepted message once, in order, with no ``recovered: false``; members of a group
without history on the killed shard get what is published after the failover.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

import django_ws
from django_ws.broadcast import get_backend
from tests.conftest import LiveServerFactory
from tests.live_server import LiveServer
from tests.redis_cluster import PrivateRedisCluster, cluster_broadcast_settings

pytestmark = pytest.mark.newest_env

#: Messages per group, and after how many the master is killed.
MESSAGES = 40
KILL_AFTER = 10


def cluster_settings(cluster: PrivateRedisCluster) -> dict[str, Any]:
    broadcast = cluster_broadcast_settings(cluster, TIMEOUT=1, RECONNECT_MAX=1)
    broadcast["HISTORY"] = {"room-*": {"SIZE": 500, "TTL": 600}}
    return {
        "ROOT_WS_URLCONF": "tests.e2e.apps.broadcast_ws",
        "ROOT_URLCONF": "tests.e2e.apps.broadcast_http",
        "WS_BROADCAST": broadcast,
    }


@pytest.fixture
async def cluster_servers(
    settings: Any,
    private_redis_cluster: PrivateRedisCluster,
    live_server_factory: LiveServerFactory,
) -> AsyncIterator[tuple[LiveServer, LiveServer]]:
    """Two servers on one cluster; this process broadcasts with the same settings."""
    overrides = cluster_settings(private_redis_cluster)
    settings.WS_BROADCAST = overrides["WS_BROADCAST"]
    servers = (live_server_factory(overrides), live_server_factory(overrides))
    yield servers
    await get_backend().stop()


def one_group_per_shard(
    cluster: PrivateRedisCluster, stem: str = "room"
) -> dict[int, str]:
    backend = get_backend()
    found: dict[int, str] = {}
    for number in range(200):
        group = f"{stem}-{number}"
        channel = backend.channel(group)  # type: ignore[attr-defined]
        found.setdefault(cluster.owner(channel), group)
        if len(found) == 3:
            return found
    raise AssertionError("200 group names all fell on fewer than 3 shards")


def publish_retrying(groups: list[str], texts: list[str], deadline: float) -> int:
    """Broadcast each text to each group, retrying on ``BroadcastError``.

    Returns how many broadcasts had to be retried.
    """
    retried = 0
    for text in texts:
        for group in groups:
            while True:
                try:
                    django_ws.broadcast_sync(group, {"text": text})
                    break
                except django_ws.BroadcastError:
                    retried += 1
                    assert time.monotonic() < deadline, "the cluster did not recover"
                    time.sleep(0.05)
    return retried


async def frames_until(ws: ClientConnection, last: str) -> list[Any]:
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
        frames.append(frame)
        if frame.get("data") == {"text": last}:
            return frames


async def test_a_killed_master_fails_over_and_members_miss_nothing(
    cluster_servers: tuple[LiveServer, LiveServer],
    private_redis_cluster: PrivateRedisCluster,
) -> None:
    cluster = private_redis_cluster
    shards = one_group_per_shard(cluster)
    groups = [shards[port] for port in sorted(shards)]
    victim = sorted(shards)[0]
    servers = cluster_servers
    plain = one_group_per_shard(cluster, "plain")[victim]
    members: list[tuple[str, ClientConnection]] = []
    listeners: list[ClientConnection] = []
    try:
        for server in servers:
            ws = await connect(server.ws_url(f"/room/{plain}"), open_timeout=5)
            listeners.append(ws)
            assert json.loads(await ws.recv()) == {"joined": plain}
            for group in groups:
                ws = await connect(server.ws_url(f"/room/{group}"), open_timeout=5)
                members.append((group, ws))
                assert json.loads(await ws.recv()) == {"joined": group}
        texts = [str(n) for n in range(1, MESSAGES + 1)]
        deadline = time.monotonic() + 60
        await asyncio.to_thread(publish_retrying, groups, texts[:KILL_AFTER], deadline)
        # What the master acknowledged may not be on its replica yet (asynchronous
        # replication): wait, so that "accepted" means "survives the failover".
        await asyncio.to_thread(cluster.wait_replicated, victim)
        cluster.kill(victim)
        retried = await asyncio.to_thread(
            publish_retrying, groups, texts[KILL_AFTER:], deadline
        )
        assert retried > 0  # the kill was felt by the publisher
        assert victim not in cluster.masters()
        for group, ws in members:
            frames = await frames_until(ws, texts[-1])
            epoch = frames[0]["epoch"]
            assert frames == [
                {"group": group, "epoch": epoch, "offset": n, "data": {"text": str(n)}}
                for n in range(1, MESSAGES + 1)
            ], f"{group} on a server: {frames}"
        # A group without history on the killed shard was subscribed again with
        # them: it gets what is published from now on (at most once).
        await asyncio.to_thread(django_ws.broadcast_sync, plain, {"text": "after"})
        for ws in listeners:
            after = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert after == {"text": "after"}
        for server in servers:
            log = server.log_text()
            assert "Traceback" not in log, log
    finally:
        for ws in [*listeners, *(ws for _, ws in members)]:
            await ws.close()
