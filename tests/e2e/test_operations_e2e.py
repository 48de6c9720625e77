"""Operations end to end: metrics scraped from uvicorn, connection limits across processes.

Real uvicorn processes, a real ``websockets`` client, a Redis of the test's own
(the shared one is flushed by other tests' fixtures, counts included). Metrics
are scraped from the metrics view in Prometheus' text format. The
limits are counted in Redis by every process; a refused socket gets HTTP 429
before accept and runs no hook (the app prints ``ops-hook`` lines).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus

import django_ws
from django_ws.broadcast import get_backend
from django_ws.broadcast.postgres import PostgresBackend
from django_ws.operations.redis_store import RedisStore
from tests.conftest import LiveServerFactory
from tests.e2e.safety_support import http_login, ws_connect
from tests.e2e.servers import refusal_status
from tests.live_server import LiveServer, PrivateRedis
from tests.ops_support import ops_settings
from tests.postgres_support import (  # noqa: F401 - a fixture
    conninfo,
    postgres_alias,
    postgres_settings,
)
from tests.test_broadcast_postgres_history import publish_unseen

ECHO = "/ops/echo/<int:number>/"
LIMITED = "/ops/limited/"
ROOM = "/ops/room/"


def scrape(server: LiveServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return every ``django_ws_`` sample the server's metrics view shows."""
    with urllib.request.urlopen(server.http_url("/metrics/"), timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith("django_ws_") and not sample.name.endswith("_created"):
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def ours(samples: dict[Any, float]) -> dict[Any, float]:
    """Drop the histogram's buckets and sum (their values depend on timing)."""
    return {
        key: value
        for key, value in samples.items()
        if not key[0].startswith("django_ws_broadcast_delivery_seconds_")
        or key[0].endswith("_count")
    }


async def wait_until(condition: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await asyncio.to_thread(condition)
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_metrics_scraped_from_uvicorn_match_a_scripted_run_exactly(
    live_server_factory: LiveServerFactory,
) -> None:
    server = live_server_factory(ops_settings(WS_METRICS=True, WS_LIVE_VIEW=False))
    sent_bytes = 0
    for number in (1, 2, 3):
        async with ws_connect(server.ws_url(f"/ops/echo/{number}/")) as ws:
            for text in (f'"m-{number}-a"', f'"m-{number}-b"'):
                await ws.send(text)
                assert await asyncio.wait_for(ws.recv(), 5) == text
                sent_bytes += len(text)
            await ws.send(b"xyz")
            assert await asyncio.wait_for(ws.recv(), 5) == b"xyz"
            sent_bytes += 3
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(server.ws_url("/nowhere/")):
            pass
    assert refused.value.response.status_code == 404
    async with ws_connect(server.ws_url(LIMITED)) as ws:
        await ws.send('"a"')
        await ws.send('"b"')  # within a second of the first: over the rate of 1/s
        assert await asyncio.wait_for(ws.recv(), 5) == '"a"'
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 1008
    async with ws_connect(server.ws_url(ROOM)) as first, ws_connect(server.ws_url(ROOM)) as second:
        await first.send('"hello"')
        assert await asyncio.wait_for(first.recv(), 5) == '"hello"'
        assert await asyncio.wait_for(second.recv(), 5) == '"hello"'

    def closed() -> bool:
        found = scrape(server)
        return sum(v for (n, _), v in found.items() if n == "django_ws_connections_closed_total") == 6

    await wait_until(closed, "the six closes to be counted")
    samples = ours(scrape(server))
    expected = {
        ("django_ws_connections_open", (("route", ECHO),)): 0.0,
        ("django_ws_connections_open", (("route", LIMITED),)): 0.0,
        ("django_ws_connections_open", (("route", ROOM),)): 0.0,
        ("django_ws_connections_accepted_total", (("route", ECHO),)): 3.0,
        ("django_ws_connections_accepted_total", (("route", LIMITED),)): 1.0,
        ("django_ws_connections_accepted_total", (("route", ROOM),)): 2.0,
        ("django_ws_connections_refused_total", (("route", ""), ("status", "404"))): 1.0,
        ("django_ws_connections_closed_total", (("code", "1000"), ("route", ECHO))): 3.0,
        ("django_ws_connections_closed_total", (("code", "1008"), ("route", LIMITED))): 1.0,
        ("django_ws_connections_closed_total", (("code", "1000"), ("route", ROOM))): 2.0,
        ("django_ws_messages_received_total", (("route", ECHO),)): 9.0,
        ("django_ws_messages_received_total", (("route", LIMITED),)): 2.0,
        ("django_ws_messages_received_total", (("route", ROOM),)): 1.0,
        ("django_ws_messages_sent_total", (("route", ECHO),)): 9.0,
        ("django_ws_messages_sent_total", (("route", LIMITED),)): 1.0,
        ("django_ws_messages_sent_total", (("route", ROOM),)): 2.0,
        ("django_ws_received_bytes_total", (("route", ECHO),)): float(sent_bytes),
        ("django_ws_received_bytes_total", (("route", LIMITED),)): 6.0,
        ("django_ws_received_bytes_total", (("route", ROOM),)): 7.0,
        ("django_ws_sent_bytes_total", (("route", ECHO),)): float(sent_bytes),
        ("django_ws_sent_bytes_total", (("route", LIMITED),)): 3.0,
        ("django_ws_sent_bytes_total", (("route", ROOM),)): 14.0,
        ("django_ws_rate_limit_closes_total", (("route", LIMITED),)): 1.0,
        ("django_ws_broadcasts_published_total", ()): 1.0,
        ("django_ws_broadcast_deliveries_total", ()): 2.0,
        ("django_ws_broadcast_delivery_seconds_count", ()): 1.0,
        ("django_ws_backend_reconnects_total", ()): 0.0,
    }
    assert samples == expected


# Connection limits -------------------------------------------------------------------


@pytest.fixture
def alice(transactional_db: None, settings: Any) -> User:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return User.objects.create_user("alice", password="wonderland")


def two_servers(
    factory: LiveServerFactory, redis_url: str, **overrides: Any
) -> tuple[LiveServer, LiveServer]:
    settings = ops_settings(
        WS_BROADCAST={"BACKEND": "django_ws.broadcast.RedisBackend", "LOCATION": redis_url},
        WS_LIVE_VIEW=False,
        **overrides,
    )
    return factory(settings), factory(settings)


async def refused_status(url: str, **options: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with ws_connect(url, **options):
            pass
    return int(refused.value.response.status_code)


def hooks_run(*servers: LiveServer) -> int:
    return sum(server.log_text().count("ops-hook on_open") for server in servers)


async def test_the_per_user_limit_holds_across_two_processes_and_a_refusal_runs_no_hook(
    private_redis: PrivateRedis, live_server_factory: LiveServerFactory, alice: User
) -> None:
    one, two = two_servers(live_server_factory, private_redis.url, WS_MAX_CONNECTIONS_PER_USER=2)
    cookie = await http_login(one, "alice", "wonderland")
    headers = {"Cookie": cookie}
    async with ws_connect(one.ws_url("/ops/who/"), additional_headers=headers) as first:
        async with ws_connect(two.ws_url("/ops/who/"), additional_headers=headers) as second:
            for ws in (first, second):
                await ws.send('"who"')
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["user"] == alice.pk
            assert await refused_status(one.ws_url("/ops/who/"), additional_headers=headers) == 429
            assert await refused_status(two.ws_url("/ops/who/"), additional_headers=headers) == 429
            # Anonymous sockets are not this user's.
            async with ws_connect(two.ws_url("/ops/who/")) as anonymous:
                await anonymous.send('"who"')
                assert json.loads(await asyncio.wait_for(anonymous.recv(), 5))["user"] is None
            assert hooks_run(one, two) == 3
        # One closed: room for one more, in either process.
        async def admitted() -> bool:
            try:
                async with ws_connect(one.ws_url("/ops/who/"), additional_headers=headers):
                    return True
            except InvalidStatus:
                return False

        deadline = time.monotonic() + 10
        while not await admitted():
            assert time.monotonic() < deadline, "the closed socket was never given back"
            await asyncio.sleep(0.05)
    assert "Refused" in one.log_text() + two.log_text()


async def test_the_per_address_limit_holds_across_two_processes(
    private_redis: PrivateRedis, live_server_factory: LiveServerFactory
) -> None:
    one, two = two_servers(live_server_factory, private_redis.url, WS_MAX_CONNECTIONS_PER_IP=3)
    async with ws_connect(one.ws_url("/ops/echo/1/")), ws_connect(two.ws_url("/ops/echo/2/")):
        async with ws_connect(two.ws_url("/ops/echo/3/")):
            assert await refused_status(one.ws_url("/ops/echo/4/")) == 429
            assert await refused_status(two.ws_url("/ops/echo/5/")) == 429
            assert hooks_run(one, two) == 3


async def test_behind_a_proxy_the_address_comes_from_the_trusted_header(
    private_redis: PrivateRedis, live_server_factory: LiveServerFactory
) -> None:
    one, two = two_servers(
        live_server_factory,
        private_redis.url,
        WS_MAX_CONNECTIONS_PER_IP=1,
        WS_CLIENT_IP_HEADER="X-Forwarded-For",
    )
    client_a = {"X-Forwarded-For": "203.0.113.9, 198.51.100.1"}  # the proxy appended .1
    client_b = {"X-Forwarded-For": "198.51.100.2"}
    async with ws_connect(one.ws_url("/ops/echo/1/"), additional_headers=client_a):
        async with ws_connect(two.ws_url("/ops/echo/2/"), additional_headers=client_b):
            assert await refused_status(two.ws_url("/ops/echo/3/"), additional_headers=client_a) == 429


@pytest.mark.newest_env
async def test_the_counts_of_a_process_that_died_expire(
    private_redis: PrivateRedis, live_server_factory: LiveServerFactory
) -> None:
    one, two = two_servers(
        live_server_factory, private_redis.url, WS_MAX_CONNECTIONS_PER_IP=1, WS_OPERATIONS_TTL=1.5
    )
    async with ws_connect(one.ws_url("/ops/echo/1/")):
        assert await refused_status(two.ws_url("/ops/echo/2/")) == 429
        assert one.pid is not None
        os.kill(one.pid, signal.SIGKILL)  # no close path runs: the count is left behind

        async def admitted() -> bool:
            try:
                async with ws_connect(two.ws_url("/ops/echo/3/")):
                    return True
            except InvalidStatus:
                return False

        deadline = time.monotonic() + 15
        while not await admitted():
            assert time.monotonic() < deadline, "the dead process's count never expired"
            await asyncio.sleep(0.2)


@pytest.mark.newest_env
async def test_a_thousand_sockets_from_one_address_are_refused_after_the_limit(
    private_redis: PrivateRedis, live_server_factory: LiveServerFactory
) -> None:
    one, two = two_servers(live_server_factory, private_redis.url, WS_MAX_CONNECTIONS_PER_IP=50)
    servers = (one, two)
    opened: list[Any] = []
    outcomes: list[int] = []
    try:
        for number in range(1000):
            url = servers[number % 2].ws_url(f"/ops/echo/{number}/")
            try:
                ws = await ws_connect(url)
            except InvalidStatus as refused:
                outcomes.append(refused.response.status_code)
            else:
                opened.append(ws)
                outcomes.append(101)
    finally:
        for ws in opened:
            await ws.close()
    assert outcomes.count(101) == 50, (outcomes.count(101), [i for i, o in enumerate(outcomes) if o == 101][-5:])
    assert outcomes[:50] == [101] * 50
    assert outcomes[50:] == [429] * 950
    assert hooks_run(one, two) == 50


@pytest.mark.newest_env
async def test_in_multiprocess_mode_a_scrape_adds_up_every_uvicorn_worker(
    live_server_factory: LiveServerFactory, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    server = live_server_factory(
        ops_settings(WS_METRICS=True, WS_LIVE_VIEW=False), uvicorn_args=["--workers", "2"]
    )
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(ws_connect(server.ws_url("/ops/who/")))
            for _ in range(10)
        ]
        pids = set()
        for ws in sockets:
            await ws.send('"who"')
            pids.add(json.loads(await asyncio.wait_for(ws.recv(), 5))["pid"])
        print(f"{len(pids)} workers served the 10 sockets")
    who = (("route", "/ops/who/"),)

    def all_closed() -> dict[Any, float] | None:
        found = scrape(server)
        done = found.get(("django_ws_connections_closed_total", (("code", "1000"),) + who))
        return found if done == 10 else None

    samples = await wait_until(all_closed, "ten closes, from whichever worker answers")
    assert samples[("django_ws_connections_accepted_total", who)] == 10
    assert samples[("django_ws_messages_received_total", who)] == 10
    assert samples[("django_ws_messages_sent_total", who)] == 10
    assert samples[("django_ws_connections_open", who)] == 0


async def test_every_server_refuses_over_the_limit_with_429_or_its_403(
    live_server_factory: LiveServerFactory, asgi_server: str
) -> None:
    server = live_server_factory(
        ops_settings(WS_MAX_CONNECTIONS_PER_IP=1, WS_LIVE_VIEW=False), server=asgi_server
    )
    async with ws_connect(server.ws_url("/ops/echo/1/")) as ws:
        await ws.send('"x"')
        assert await asyncio.wait_for(ws.recv(), 5) == '"x"'
        status = await refused_status(server.ws_url("/ops/echo/2/"))
        assert status == refusal_status(asgi_server, 429)
    assert hooks_run(server) == 1


@pytest.mark.newest_env
async def test_a_redis_outage_counts_one_reconnect_and_the_broadcast_error(
    private_redis: PrivateRedis, live_server_factory: LiveServerFactory
) -> None:
    server = live_server_factory(
        ops_settings(
            WS_METRICS=True,
            WS_LIVE_VIEW=False,
            WS_BROADCAST={
                "BACKEND": "django_ws.broadcast.RedisBackend",
                "LOCATION": private_redis.url,
                "OPTIONS": {"TIMEOUT": 0.5, "RECONNECT_MAX": 0.5},
            },
        )
    )
    async with ws_connect(server.ws_url(ROOM)) as ws:
        await ws.send('"before"')
        assert await asyncio.wait_for(ws.recv(), 5) == '"before"'
        private_redis.stop()
        await wait_until(lambda: "Lost the connection to Redis" in server.log_text(), "the outage")
        # Published to the local members; then Redis refuses it: BroadcastError
        # (counted), which the Room handler lets escape (its socket closes 1011).
        await ws.send('"during"')
        assert await asyncio.wait_for(ws.recv(), 5) == '"during"'
        private_redis.start()
        await wait_until(lambda: "Reconnected to Redis" in server.log_text(), "the reconnection")
    samples = scrape(server)
    assert samples[("django_ws_backend_reconnects_total", ())] == 1
    assert samples[("django_ws_backend_errors_total", (("operation", "publish"),))] == 1
    assert samples[("django_ws_broadcasts_published_total", ())] == 2


@pytest.mark.newest_env
async def test_a_dead_process_drops_out_of_the_live_view(
    private_redis: PrivateRedis, live_server_factory: LiveServerFactory
) -> None:
    settings = ops_settings(
        WS_BROADCAST={"BACKEND": "django_ws.broadcast.RedisBackend", "LOCATION": private_redis.url},
        WS_LIVE_VIEW=True,
        WS_OPERATIONS_TTL=1.5,
    )
    one, two = live_server_factory(settings), live_server_factory(settings)
    store = RedisStore(private_redis.url, "django_ws", timeout=2, ttl=1.5)

    def pids() -> set[int]:
        return {snapshot["pid"] for snapshot in store.read_snapshots()}

    await wait_until(lambda: pids() == {one.pid, two.pid}, "both processes listed")
    assert one.pid is not None
    os.kill(one.pid, signal.SIGKILL)
    await wait_until(lambda: pids() == {two.pid}, "the dead process to drop out", timeout=15)


@pytest.mark.newest_env
async def test_postgres_backend_events_count_a_repaired_gap_and_a_reconnect(
    settings: Any, postgres_alias: str, live_server_factory: LiveServerFactory
) -> None:
    broadcast_settings = {
        **postgres_settings(postgres_alias, TIMEOUT=2, RECONNECT_MAX=0.5),
        "HISTORY": {"room-*": {"SIZE": 100, "TTL": 600}},
    }
    settings.WS_BROADCAST = broadcast_settings  # this process publishes too
    server = live_server_factory(
        ops_settings(
            ROOT_WS_URLCONF="tests.e2e.apps.broadcast_ws",
            # The test process's own (with the test database's name).
            DATABASES=json.loads(json.dumps(django_settings.DATABASES)),
            WS_BROADCAST=broadcast_settings,
            WS_METRICS=True,
            WS_LIVE_VIEW=False,
        )
    )
    backend = get_backend()
    assert isinstance(backend, PostgresBackend)
    repaired = ("django_ws_backend_gap_repairs_total", (("outcome", "repaired"),))
    lost = ("django_ws_backend_gap_repairs_total", (("outcome", "lost"),))
    reconnects = ("django_ws_backend_reconnects_total", ())
    try:
        async with ws_connect(server.ws_url("/room/room-m")) as ws:
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"joined": "room-m"}
            with psycopg.connect(conninfo(postgres_alias), autocommit=True) as other:
                # Another process's messages whose NOTIFY never reached the server.
                publish_unseen(other, backend, "room-m", 1, 2)
                await asyncio.to_thread(django_ws.broadcast_sync, "room-m", {"n": 3})
                offsets = [
                    json.loads(await asyncio.wait_for(ws.recv(), 5))["offset"]
                    for _ in range(3)
                ]
                assert offsets == [1, 2, 3]
                samples = scrape(server)
                assert (samples.get(repaired), samples.get(lost, 0.0)) == (1.0, 0.0)
                assert samples[reconnects] == 0.0
                channel = backend.channel("room-m")
                ended = other.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query = %s",
                    (f'LISTEN "{channel}"',),
                ).fetchall()
                assert len(ended) == 1, "the server's LISTEN connection was not found"
            await wait_until(lambda: scrape(server)[reconnects] == 1.0, "the reconnect")
            await wait_until(
                lambda: "Reconnected to PostgreSQL" in server.log_text(), "the LISTEN again"
            )
            await asyncio.to_thread(django_ws.broadcast_sync, "room-m", {"n": 4})
            frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert (frame["offset"], frame["data"]) == (4, {"n": 4})
    finally:
        await backend.stop()
