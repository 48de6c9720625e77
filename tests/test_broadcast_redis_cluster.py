"""``RedisBackend`` on a real Redis Cluster (3 masters, 3 replicas), in-process.

Every group behaviour runs again on the cluster; then what the cluster is for: a
broadcast is one SPUBLISH on the master that owns the group's channel and no
command anywhere else, whatever the shard.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any
from unittest.mock import ANY

import pytest
from django.core.exceptions import ImproperlyConfigured

import django_ws
from django_ws.broadcast import Presence, get_backend
from django_ws.broadcast.redis import RedisBackend
from django_ws.testing import WebSocketTestClient
from tests.broadcast_support import (
    GroupBehaviour,
    assert_nothing_else_arrives,
    joined,
    room_client,
)
from tests.redis_cluster import PrivateRedisCluster, cluster_broadcast_settings

UseCluster = Callable[..., RedisBackend]


@pytest.fixture
async def use_cluster(
    settings: Any, redis_cluster: PrivateRedisCluster
) -> AsyncIterator[UseCluster]:
    """Switch ``WS_BROADCAST`` to the cluster; stop the backends after the test."""
    backends: list[RedisBackend] = []

    def use(**config: Any) -> RedisBackend:
        settings.WS_BROADCAST = {
            **cluster_broadcast_settings(redis_cluster),
            **config,
        }
        backend = get_backend()
        assert isinstance(backend, RedisBackend)
        backends.append(backend)
        return backend

    yield use
    for backend in backends:
        await backend.stop()
        assert backend.member_count() == 0


@pytest.fixture
async def backend(use_cluster: UseCluster) -> RedisBackend:
    backend = use_cluster()
    await backend.start()
    return backend


class TestRedisClusterBackend(GroupBehaviour):
    """Every group behaviour, through a Redis Cluster."""


def groups_on_every_shard(
    cluster: PrivateRedisCluster, backend: RedisBackend, stem: str
) -> dict[int, str]:
    """Return one group name per master, by the master that owns its channel."""
    found: dict[int, str] = {}
    for number in range(200):
        group = f"{stem}-{number}"
        found.setdefault(cluster.owner(backend.channel(group)), group)
        if len(found) == 3:
            return found
    raise AssertionError("200 group names all fell on fewer than 3 shards")


#: What the snapshots themselves run (a connection's handshake, INFO) and what
#: replication runs by itself.
NOT_OURS = (
    "cmdstat_info",
    "cmdstat_hello",
    "cmdstat_client|setinfo",
    "cmdstat_ping",
    "cmdstat_replconf",
)


def command_delta(
    before: dict[int, dict[str, int]], after: dict[int, dict[str, int]]
) -> dict[int, dict[str, int]]:
    """Return, per node, the commands that ran between two snapshots."""
    changed = {}
    for port, calls in after.items():
        moved = {
            name: count - before.get(port, {}).get(name, 0)
            for name, count in calls.items()
            if count != before.get(port, {}).get(name, 0)
            and name not in NOT_OURS
        }
        if moved:
            changed[port] = moved
    return changed


def messaging(delta: dict[int, dict[str, int]]) -> dict[int, dict[str, int]]:
    """Keep the publishing and scripting commands of a ``command_delta``."""
    kept = {}
    for port, calls in delta.items():
        mine = {
            name: count
            for name, count in calls.items()
            if name.split("_", 1)[1] in ("publish", "spublish", "eval", "evalsha")
        }
        if mine:
            kept[port] = mine
    return kept


@pytest.mark.parametrize("history", [False, True], ids=["plain", "history"])
async def test_a_broadcast_is_one_spublish_on_the_owning_master_only(
    use_cluster: UseCluster, redis_cluster: PrivateRedisCluster, history: bool
) -> None:
    config = {"HISTORY": {"room-*": {"SIZE": 10, "TTL": 60}}} if history else {}
    backend = use_cluster(**config)
    await backend.start()
    shards = groups_on_every_shard(redis_cluster, backend, "room")
    assert sorted(shards) == redis_cluster.masters()
    ports = sorted(shards)
    client = room_client()
    async with (
        client.connect(f"/class/{shards[ports[0]]}") as a,
        client.connect(f"/class/{shards[ports[1]]}") as b,
        client.connect(f"/class/{shards[ports[2]]}") as c,
    ):
        members = {port: await joined(ws) for port, ws in zip(ports, (a, b, c))}
        for port, group in shards.items():
            # The first script call on a node loads it (EVALSHA, NOSCRIPT, EVAL).
            await django_ws.broadcast(group, "warm-up")
            assert await members[port].receive_json() in (
                "warm-up",
                {"group": group, "epoch": ANY, "offset": 1, "data": "warm-up"},
            )
            before = redis_cluster.command_calls()
            for number in range(5):
                await django_ws.broadcast(group, number)
            received = [await members[port].receive_json() for _ in range(5)]
            after = redis_cluster.command_calls()
            if history:
                assert [frame["data"] for frame in received] == [0, 1, 2, 3, 4]
                delta = command_delta(before, after)
                # The script's own commands count too, and its writes replicate.
                assert messaging(delta) == {
                    port: {"cmdstat_evalsha": 5, "cmdstat_spublish": 5}
                }
                others = set(redis_cluster.masters()) - {port}
                assert {node: delta[node] for node in others if node in delta} == {}
            else:
                assert received == [0, 1, 2, 3, 4]
                assert command_delta(before, after) == {port: {"cmdstat_spublish": 5}}
        for port, group in shards.items():
            await django_ws.broadcast(group, "marker")  # next, if nothing else came
            frame = await members[port].receive_json()
            assert (frame["data"] if history else frame) == "marker"


async def test_each_process_subscribes_per_shard_to_its_groups_only(
    use_cluster: UseCluster, redis_cluster: PrivateRedisCluster
) -> None:
    backend = use_cluster()
    await backend.start()
    shards = groups_on_every_shard(redis_cluster, backend, "lobby")
    client = room_client()
    async with client.connect(f"/class/{shards[redis_cluster.masters()[0]]}") as ws:
        await joined(ws)
        for port in redis_cluster.masters():
            with redis_cluster.nodes[port].client() as node:
                subscribed = node.execute_command("PUBSUB", "SHARDCHANNELS")
            mine = [c for c in subscribed if c.startswith(backend.prefix.encode())]
            first = port == redis_cluster.masters()[0]
            expected = [backend.channel(shards[port])] if first else []
            assert mine == expected
        assert len(backend._shards.shards) == 1  # type: ignore[union-attr]
    assert backend._shards.shards == {}  # type: ignore[union-attr]


async def test_presence_on_the_cluster_adds_up_and_leaves(
    use_cluster: UseCluster, redis_cluster: PrivateRedisCluster
) -> None:
    backend = use_cluster()
    await backend.start()
    client = room_client()
    async with (
        client.connect("/class/lobby") as a,
        client.connect("/function/lobby") as b,
    ):
        await joined(a), await joined(b)
        assert await django_ws.presence("lobby") == Presence(count=2, users=[])
        await b.close()
        assert await django_ws.presence("lobby") == Presence(count=1, users=[])
    assert await django_ws.presence("lobby") == Presence(count=0, users=[])


async def test_positions_and_recovery_on_the_cluster(use_cluster: UseCluster) -> None:
    use_cluster(HISTORY={"room-*": {"SIZE": 10, "TTL": 60}})
    for number in range(3):
        django_ws.broadcast_sync("room-p", number)
    epoch, offset = django_ws.position_sync("room-p")
    assert offset == 3
    assert await django_ws.position("room-p") == (epoch, 3)
    client = room_client()
    since = {"ws_since": f'{{"room-p": ["{epoch}", 1]}}'}
    async with client.connect("/class/room-p", query_string=since) as ws:
        assert await ws.receive_json() == {
            "group": "room-p",
            "recovered": True,
            "epoch": epoch,
            "offset": 1,
            "missed": 2,
        }
        assert [(await ws.receive_json())["data"] for _ in range(2)] == [1, 2]
        assert await ws.receive_json() == {"joined": "room-p"}


# Misconfiguration ------------------------------------------------------------------


async def test_cluster_option_on_a_plain_redis_fails_at_startup(
    settings: Any, redis_url: str
) -> None:
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": redis_url.rsplit("/", 1)[0] + "/0",
        "OPTIONS": {"CLUSTER": True},
    }
    with pytest.raises(ImproperlyConfigured) as excinfo:
        await get_backend().start()
    assert str(excinfo.value) == (
        "WS_BROADCAST['OPTIONS']['CLUSTER'] is True but Redis at "
        "redis://127.0.0.1:6379/0 is not a cluster node (cluster_enabled is 0): "
        "remove 'CLUSTER' or point LOCATION at a cluster node."
    )
    await get_backend().stop()


async def test_a_cluster_node_without_the_option_fails_at_startup(
    settings: Any, redis_cluster: PrivateRedisCluster
) -> None:
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": redis_cluster.url,
    }
    with pytest.raises(ImproperlyConfigured) as excinfo:
        await get_backend().start()
    assert str(excinfo.value) == (
        f"Redis at {redis_cluster.url} is a Redis Cluster node: set "
        "WS_BROADCAST['OPTIONS']['CLUSTER'] = True."
    )
    await get_backend().stop()


@pytest.mark.parametrize(
    "location, options, message",
    [
        (
            "redis://127.0.0.1:7000/0",
            {"CLUSTER": "yes"},
            "WS_BROADCAST['OPTIONS']['CLUSTER'] must be True (LOCATION is a node of "
            "a Redis Cluster) or False, got 'yes'.",
        ),
        (
            "unix:///tmp/redis.sock",
            {"CLUSTER": True},
            "WS_BROADCAST['OPTIONS']['CLUSTER'] is True but LOCATION is a unix "
            "socket: give any node of the cluster as redis://host:port/0.",
        ),
    ],
)
def test_bad_cluster_options_fail_at_configuration(
    settings: Any, location: str, options: dict[str, Any], message: str
) -> None:
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": location,
        "OPTIONS": options,
    }
    with pytest.raises(ImproperlyConfigured) as excinfo:
        django_ws.get_websocket_application()
    assert str(excinfo.value) == message


# Slot migration ----------------------------------------------------------------------


async def test_a_migrated_slot_moves_the_subscription_and_loses_nothing(
    use_cluster: UseCluster, redis_cluster: PrivateRedisCluster
) -> None:
    backend = use_cluster(HISTORY={"room-*": {"SIZE": 50, "TTL": 60}})
    await backend.start()
    client = room_client()
    channel = backend.channel("room-m")
    async with client.connect("/class/room-m") as ws:
        await joined(ws)
        for number in range(5):
            await django_ws.broadcast("room-m", number)
        source = redis_cluster.owner(channel)
        target = next(port for port in redis_cluster.masters() if port != source)
        await asyncio.to_thread(redis_cluster.move_slot, channel, target)
        assert redis_cluster.owner(channel) == target
        for number in range(5, 10):  # the cluster client follows MOVED
            await django_ws.broadcast("room-m", number)
        frames = [await ws.receive_json() for _ in range(10)]
        epoch = frames[0]["epoch"]
        assert frames == [
            {"group": "room-m", "epoch": epoch, "offset": n + 1, "data": n}
            for n in range(10)
        ]
        shard = backend._shards.shard_of(channel)  # type: ignore[union-attr]
        assert shard is not None and shard.port == target
        with redis_cluster.nodes[target].client() as node:
            assert channel in node.execute_command("PUBSUB", "SHARDCHANNELS")
        with redis_cluster.nodes[source].client() as node:
            assert channel not in node.execute_command("PUBSUB", "SHARDCHANNELS")
