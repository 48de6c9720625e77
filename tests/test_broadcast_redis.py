"""Groups and broadcast through ``RedisBackend``, in-process against a real Redis."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

import django_ws
from django_ws.broadcast import Presence, get_backend
from django_ws import connection_ids
from django_ws.broadcast.redis import RedisBackend, decode_payload, encode_payload
from django_ws.testing import WebSocketTestClient
from tests.broadcast_support import (
    GroupBehaviour,
    application,
    assert_nothing_else_arrives,
    connections,
    joined,
    room_client,
)
from tests.live_server import PrivateRedis

REDIS_BACKEND = "django_ws.broadcast.RedisBackend"


def redis_settings(location: str, **options: Any) -> dict[str, Any]:
    """``WS_BROADCAST`` for ``location``, with a prefix of the test's own.

    Pub/sub channels are shared by every database of a Redis server, so a prefix
    per test keeps concurrent test runs on the shared Redis apart.
    """
    options.setdefault("PREFIX", f"test-{uuid.uuid4().hex[:8]}")
    options.setdefault("TIMEOUT", 1)
    return {"BACKEND": REDIS_BACKEND, "LOCATION": location, "OPTIONS": options}


UseRedis = Callable[..., RedisBackend]


@pytest.fixture
async def use_redis(settings: Any) -> AsyncIterator[UseRedis]:
    """Switch ``WS_BROADCAST`` to a Redis backend; stop it after the test."""
    backends: list[RedisBackend] = []

    def use(location: str, **options: Any) -> RedisBackend:
        settings.WS_BROADCAST = redis_settings(location, **options)
        backend = get_backend()
        assert isinstance(backend, RedisBackend)
        backends.append(backend)
        return backend

    yield use
    for backend in backends:
        await backend.stop()
        assert backend.member_count() == 0


@pytest.fixture
def backend(redis_url: str, use_redis: UseRedis) -> RedisBackend:
    return use_redis(redis_url)


class TestRedisBackend(GroupBehaviour):
    """Every group behaviour, through Redis."""


def publish_from_another_process(
    backend: RedisBackend,
    group: str,
    message: dict[str, Any],
    exclude: frozenset[str] = frozenset(),
) -> int:
    """PUBLISH what another process's ``broadcast`` would; return the receivers."""
    with redis.Redis.from_url(backend.location) as other:
        receivers: int = other.publish(
            backend.channel(group), encode_payload(message, exclude, "other-process")
        )
    return receivers


def command_calls(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {
        name: entry["calls"] for name, entry in stats.items() if name != "cmdstat_info"
    }


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {
        name: calls - before.get(name, 0)
        for name, calls in after.items()
        if calls != before.get(name, 0)
    }


# Messages between processes ----------------------------------------------------


def test_payload_round_trip() -> None:
    text = {"type": "websocket.send", "text": "héllo\nworld"}
    binary = {"type": "websocket.send", "bytes": b"\n\x00\xff"}
    assert decode_payload(encode_payload(text, frozenset({"p:2", "p:1"}), "p")) == (
        "p",
        frozenset({"p:1", "p:2"}),
        text,
    )
    assert encode_payload(binary, frozenset(), "p") == b"bp\n\n\n\x00\xff"
    assert decode_payload(b"bp\n\n\n\x00\xff") == ("p", frozenset(), binary)


async def test_a_broadcast_from_another_process_reaches_local_members(
    backend: RedisBackend,
) -> None:
    client = room_client()
    url = "/class/lobby"
    async with (
        client.connect(url, query_string={"name": "a"}) as a,
        client.connect(url, query_string={"name": "b"}) as b,
    ):
        await joined(a), await joined(b)
        message = {"type": "websocket.send", "text": '{"from":"elsewhere"}'}
        assert publish_from_another_process(backend, "lobby", message) == 1
        assert await a.receive_json() == {"from": "elsewhere"}
        assert await b.receive_json() == {"from": "elsewhere"}
        excluded = frozenset({connections["a"].connection_id})
        publish_from_another_process(backend, "lobby", message, excluded)
        assert await b.receive_json() == {"from": "elsewhere"}
        await assert_nothing_else_arrives("lobby", a)


async def test_a_process_subscribes_only_to_groups_with_local_members(
    backend: RedisBackend,
) -> None:
    client = room_client()
    message = {"type": "websocket.send", "text": "1"}
    async with client.connect("/class/lobby") as ws:
        await joined(ws)
        assert publish_from_another_process(backend, "lobby", message) == 1
        assert await ws.receive_json() == 1
        assert publish_from_another_process(backend, "elsewhere", message) == 0
        await ws.send_json({"leave": "lobby"})
        assert await ws.receive_json() == {"groups": []}
        assert publish_from_another_process(backend, "lobby", message) == 0


async def test_one_publish_per_broadcast_whatever_the_member_count(
    private_redis: PrivateRedis, use_redis: UseRedis
) -> None:
    use_redis(private_redis.url, PRESENCE_TTL=600)  # no heartbeat during the test
    client = WebSocketTestClient(application())
    stats = redis.Redis.from_url(private_redis.url)
    for count in (1, 40):
        async with AsyncExitStack() as stack:
            members = [
                await joined(await stack.enter_async_context(client.connect("/class/one")))
                for _ in range(count)
            ]
            before = command_calls(stats)
            await django_ws.broadcast("one", {"n": count})
            assert delta(before, command_calls(stats)) == {"cmdstat_publish": 1}
            for member in members:
                assert await member.receive_json() == {"n": count}
    stats.close()


async def test_presence_adds_up_processes_and_drops_dead_ones(
    private_redis: PrivateRedis, use_redis: UseRedis
) -> None:
    backend = use_redis(private_redis.url)
    client = WebSocketTestClient(application())
    async with client.connect("/class/lobby") as ws:
        await joined(ws)
        # Another process, which refreshes its entry no more: it died.
        with redis.Redis.from_url(backend.location) as other:
            other.set(
                backend.presence_key("lobby", "dead-1"),
                '{"count":2,"users":[42,7]}',
                px=500,
            )
            other.sadd(backend.presence_index("lobby"), "dead-1")
            assert await django_ws.presence("lobby") == Presence(count=3, users=[7, 42])
            deadline = time.monotonic() + 5
            while (await django_ws.presence("lobby")).count != 1:
                assert time.monotonic() < deadline, "the dead process is still counted"
                await asyncio.sleep(0.1)
            assert other.smembers(backend.presence_index("lobby")) == {
                connection_ids.process_id().encode()
            }


# Configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.1:6379/0", "127.0.0.1:6379", None, "redis:/no-host-here:6379"],
)
def test_bad_location_fails_at_startup(settings: Any, location: Any) -> None:
    settings.WS_BROADCAST = {"BACKEND": REDIS_BACKEND, "LOCATION": location}
    with pytest.raises(ImproperlyConfigured) as excinfo:
        django_ws.get_websocket_application()
    assert str(excinfo.value) == (
        f"WS_BROADCAST['LOCATION'] is {location!r}; the RedisBackend needs a Redis "
        "URL such as 'redis://127.0.0.1:6379/0' (also rediss:// for TLS and "
        "unix:///path/to/redis.sock)."
    )


def test_invalid_redis_url_fails_at_startup(settings: Any) -> None:
    location = "redis://:s3cret@localhost:port/0"
    settings.WS_BROADCAST = {"BACKEND": REDIS_BACKEND, "LOCATION": location}
    with pytest.raises(ImproperlyConfigured) as excinfo:
        django_ws.get_websocket_application()
    assert str(excinfo.value) == (
        "WS_BROADCAST['LOCATION'] 'redis://:***@localhost:port/0' is not a valid Redis "
        "URL: Port could not be cast to integer value as 'port'"
    )


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"TIMEOUTS": 1},
            (
                "WS_BROADCAST['OPTIONS'] has unknown keys ['TIMEOUTS']; the "
                "RedisBackend takes ['CLUSTER', 'PREFIX', 'PRESENCE_TTL', "
                "'RECONNECT_MAX', 'SENTINELS', 'SERVICE', 'TIMEOUT']."
            ),
        ),
        (
            {"TIMEOUT": 0},
            (
                "WS_BROADCAST['OPTIONS']['TIMEOUT'] must be a positive number of "
                "seconds, got 0."
            ),
        ),
        (
            {"PREFIX": ""},
            "WS_BROADCAST['OPTIONS']['PREFIX'] must be a non-empty string, got ''.",
        ),
    ],
)
def test_bad_options_fail_at_startup(
    settings: Any, options: dict[str, Any], message: str
) -> None:
    settings.WS_BROADCAST = {
        "BACKEND": REDIS_BACKEND,
        "LOCATION": "redis://127.0.0.1:6379/0",
        "OPTIONS": options,
    }
    with pytest.raises(ImproperlyConfigured) as excinfo:
        django_ws.get_websocket_application()
    assert str(excinfo.value) == message


def test_configuring_does_not_connect(settings: Any) -> None:
    # Nothing listens on port 1: building the app still works (no connection yet).
    settings.WS_BROADCAST = redis_settings("redis://127.0.0.1:1/0")
    django_ws.get_websocket_application()
    assert isinstance(get_backend(), RedisBackend)


# Faults --------------------------------------------------------------------------


async def test_redis_down_raises_broadcast_error_and_local_members_still_get_it(
    private_redis: PrivateRedis,
    use_redis: UseRedis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="django_ws")
    backend = use_redis(private_redis.url, TIMEOUT=1, RECONNECT_MAX=0.5)
    client = WebSocketTestClient(application())
    async with client.connect("/class/lobby") as a, client.connect("/class/lobby") as b:
        await joined(a), await joined(b)
        private_redis.stop()

        with pytest.raises(django_ws.BroadcastError, match="did not answer within 1 s"):
            await django_ws.broadcast("lobby", {"text": "while down"})
        assert await a.receive_json() == {"text": "while down"}
        assert await b.receive_json() == {"text": "while down"}
        with pytest.raises(django_ws.BroadcastError, match="did not answer within 1 s"):
            await asyncio.to_thread(django_ws.broadcast_sync, "lobby", "sync")
        assert await a.receive_json() == "sync"
        assert await b.receive_json() == "sync"
        with pytest.raises(django_ws.BroadcastError):
            await django_ws.presence("lobby")
        await a.send_json({"say": "from a socket"})  # the socket goes on serving
        assert await a.receive_json() == {"text": "from a socket"}
        assert await a.receive_json() == {"error": "broadcast failed"}
        assert await b.receive_json() == {"text": "from a socket"}

        private_redis.start()
        message = {"type": "websocket.send", "text": '"back"'}
        deadline = time.monotonic() + 10
        while publish_from_another_process(backend, "lobby", message) == 0:
            assert time.monotonic() < deadline, "the backend did not subscribe again"
            await asyncio.sleep(0.1)
        assert await a.receive_json() == "back"
        assert await b.receive_json() == "back"
        assert await django_ws.presence("lobby") == Presence(count=2, users=[])

    records = [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if "Redis" in r.getMessage()
    ]
    where = f"Redis at {private_redis.url}"
    assert [level for level, _ in records] == ["WARNING", "INFO"]
    assert records[0][1].startswith(f"Lost the connection to {where} (")
    assert records[1][1] == f"Reconnected to {where}; subscribed again to 1 groups"


@pytest.fixture
async def silent_redis() -> AsyncIterator[str]:
    """A server that accepts connections and never answers: a hung Redis."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield f"redis://127.0.0.1:{port}/0"
    server.close()
    for writer in accepted:
        writer.close()
    await server.wait_closed()


async def test_a_hung_redis_never_hangs_a_broadcast(
    silent_redis: str, use_redis: UseRedis
) -> None:
    use_redis(silent_redis, TIMEOUT=0.3)
    client = WebSocketTestClient(application())
    async with client.connect("/class/lobby") as ws:
        await joined(ws)  # joining waits for Redis no longer than TIMEOUT
        started = time.monotonic()
        with pytest.raises(
            django_ws.BroadcastError, match="did not answer within 0.3 s"
        ):
            await django_ws.broadcast("lobby", "local")
        with pytest.raises(
            django_ws.BroadcastError, match="did not answer within 0.3 s"
        ):
            await asyncio.to_thread(django_ws.broadcast_sync, "lobby", "local too")
        assert time.monotonic() - started < 5
        assert await ws.receive_json() == "local"
        assert await ws.receive_json() == "local too"


async def test_lifespan_starts_the_backend_and_shutdown_leaves_presence(
    redis_url: str, use_redis: UseRedis
) -> None:
    backend = use_redis(redis_url)
    app = application()
    to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.ensure_future(
        app({"type": "lifespan"}, to_app.get, from_app.put)
    )
    await to_app.put({"type": "lifespan.startup"})
    assert await asyncio.wait_for(from_app.get(), 5) == {
        "type": "lifespan.startup.complete"
    }

    client = WebSocketTestClient(app)
    async with client.connect("/class/lobby") as ws:
        await joined(ws)
        keys = redis.Redis.from_url(redis_url)
        assert len(keys.keys(f"{backend.prefix}:*")) == 2  # the entry and its index
        await to_app.put({"type": "lifespan.shutdown"})
        assert await ws.receive_close() == 1001
        assert await asyncio.wait_for(from_app.get(), 5) == {
            "type": "lifespan.shutdown.complete"
        }
    await asyncio.wait_for(lifespan, 5)
    assert keys.keys(f"{backend.prefix}:*") == []
    keys.close()
