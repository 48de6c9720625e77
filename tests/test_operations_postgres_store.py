"""``PostgresStore`` against the real PostgreSQL: counts, limits, expiry, snapshots.

Two stores with different ``process`` ids stand for two processes sharing one
backend; each test has a namespace (``PREFIX``) of its own. Across real uvicorn
processes: ``tests/e2e/test_operations_postgres_e2e.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ws import get_websocket_application
from django_ws.operations.backend_store import store_for_backend
from django_ws.operations.postgres_store import PostgresStore
from tests.postgres_support import (  # noqa: F401  (fixtures)
    UsePostgres,
    conninfo,
    postgres_alias,
    unique_prefix,
    use_postgres,
)

StoreFactory = Callable[..., PostgresStore]


@pytest.fixture
async def make_store(postgres_alias: str) -> AsyncIterator[StoreFactory]:  # noqa: F811
    made: list[PostgresStore] = []
    namespace = unique_prefix()

    def params() -> dict[str, Any]:
        return {"conninfo": conninfo(postgres_alias)}

    def make(process: str, ttl: float = 30) -> PostgresStore:
        store = PostgresStore(params, namespace, timeout=5, ttl=ttl, process=process)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()
    with psycopg.connect(conninfo(postgres_alias), autocommit=True) as connection:
        for table in ("django_ws_ops_count", "django_ws_ops_snapshot"):
            connection.execute(f"DELETE FROM {table} WHERE namespace = %s", (namespace,))


async def test_acquire_counts_across_processes_up_to_the_limit(make_store: StoreFactory) -> None:
    one, two = make_store("p1"), make_store("p2")
    key = ("ip", "10.0.0.1", 2)
    assert await one.acquire([key]) is None
    assert await two.acquire([key]) is None
    assert await one.acquire([key]) == key
    assert await two.acquire([key]) == key


async def test_a_refusal_counts_nothing_under_any_key(make_store: StoreFactory) -> None:
    one, two = make_store("p1"), make_store("p2")
    user, address = ("user", "7", 1), ("ip", "10.0.0.1", 5)
    assert await one.acquire([user, address]) is None
    assert await two.acquire([address, user]) == user  # the full key, not the first
    # The refused acquire did not count under the address: four more fit.
    for _ in range(4):
        assert await two.acquire([address]) is None
    assert await one.acquire([address]) == address


async def test_release_gives_a_place_back(make_store: StoreFactory) -> None:
    one, two = make_store("p1"), make_store("p2")
    key = ("user", "7", 1)
    assert await one.acquire([key]) is None
    assert await two.acquire([key]) == key
    await one.release([key])
    assert await two.acquire([key]) is None
    assert await one.acquire([key]) == key


async def test_a_release_without_a_count_takes_nothing_from_others(
    make_store: StoreFactory,
) -> None:
    one, two = make_store("p1"), make_store("p2")
    key = ("user", "7", 1)
    assert await one.acquire([key]) is None
    await two.release([key])  # two has nothing under the key
    assert await two.acquire([key]) == key


async def test_concurrent_acquires_never_exceed_the_limit(make_store: StoreFactory) -> None:
    """Ten processes race for five places: exactly five win."""
    stores = [make_store(f"p{number}") for number in range(10)]
    key = ("ip", "10.0.0.1", 5)
    await asyncio.gather(*(store.acquire([("ip", "warm-up", 99)]) for store in stores))
    outcomes = await asyncio.gather(*(store.acquire([key]) for store in stores))
    assert outcomes.count(None) == 5
    assert outcomes.count(key) == 5


async def test_a_dead_processs_counts_expire_and_a_live_ones_are_refreshed(
    make_store: StoreFactory,
) -> None:
    dead, alive, other = make_store("dead", ttl=1), make_store("alive", ttl=1), make_store("o")
    key = ("ip", "10.0.0.1", 2)
    assert await dead.acquire([key]) is None
    assert await alive.acquire([key]) is None
    assert await other.acquire([key]) == key
    deadline = time.monotonic() + 10
    while await other.acquire([key]) is not None:  # until "dead"'s count expires
        assert time.monotonic() < deadline, "the dead process's count never expired"
        await alive.refresh({("ip", "10.0.0.1"): 1})
        await asyncio.sleep(0.2)
    # "alive" kept its count by refreshing; "other" now holds the second place.
    assert await dead.acquire([key]) == key


async def test_refresh_restates_this_processs_count(make_store: StoreFactory) -> None:
    one, two = make_store("p1"), make_store("p2")
    key = ("user", "7", 3)
    for _ in range(3):
        assert await one.acquire([key]) is None
    await one.refresh({("user", "7"): 1})  # two of the counts had gone astray
    assert await two.acquire([key]) is None
    assert await two.acquire([key]) is None
    assert await two.acquire([key]) == key


async def test_the_refresh_sweeps_expired_rows(
    make_store: StoreFactory, postgres_alias: str  # noqa: F811
) -> None:
    short = make_store("short", ttl=0.2)
    assert await short.acquire([("ip", "10.0.0.9", 1)]) is None
    await short.write_snapshot({"process": "short", "pid": 1})
    await asyncio.sleep(0.3)
    await make_store("sweeper").refresh({})

    def left(table: str) -> int:
        with psycopg.connect(conninfo(postgres_alias), autocommit=True) as connection:
            row = connection.execute(
                f"SELECT count(*) FROM {table} WHERE namespace = %s", (short.namespace,)
            ).fetchone()
        assert row is not None
        return int(row[0])

    assert (left("django_ws_ops_count"), left("django_ws_ops_snapshot")) == (0, 0)


async def test_snapshots_of_live_processes_are_read_from_sync_code(
    make_store: StoreFactory,
) -> None:
    one, two = make_store("p1"), make_store("p2", ttl=0.5)
    await one.write_snapshot({"process": "p1", "open": 2, "sockets": [{"route": "/a/"}]})
    await two.write_snapshot({"process": "p2", "open": 0, "sockets": []})
    snapshots = await asyncio.to_thread(one.read_snapshots)
    assert snapshots == [
        {"process": "p1", "open": 2, "sockets": [{"route": "/a/"}]},
        {"process": "p2", "open": 0, "sockets": []},
    ]
    await asyncio.sleep(0.6)  # p2 stopped writing: it drops out
    assert [s["process"] for s in one.read_snapshots()] == ["p1"]
    await one.close()
    assert one.read_snapshots() == []


async def test_an_unreachable_database_raises_and_the_next_call_reconnects(
    postgres_alias: str,  # noqa: F811
) -> None:
    target = {"conninfo": "host=127.0.0.1 port=1 connect_timeout=1"}
    store = PostgresStore(lambda: dict(target), unique_prefix(), timeout=2, ttl=5, process="p")
    with pytest.raises(psycopg.OperationalError):
        await store.acquire([("ip", "10.0.0.1", 1)])
    target["conninfo"] = conninfo(postgres_alias)
    assert await store.acquire([("ip", "10.0.0.1", 1)]) is None
    await store.close()


async def test_the_postgres_backend_gets_a_postgres_store_and_limits_start(
    use_postgres: UsePostgres, postgres_alias: str, settings: Any  # noqa: F811
) -> None:
    backend = use_postgres(postgres_alias)
    settings.WS_MAX_CONNECTIONS_PER_IP = 2
    get_websocket_application()  # no ImproperlyConfigured: the limits have a store
    store = store_for_backend(30, limits=True)
    assert isinstance(store, PostgresStore)
    assert store.namespace == backend.prefix
    assert await store.acquire([("ip", "10.0.0.1", 1)]) is None
    await store.release([("ip", "10.0.0.1", 1)])
    await store.close()


def test_a_backend_without_a_store_still_names_the_postgres_backend(settings: Any) -> None:
    settings.WS_BROADCAST = {"BACKEND": "tests.test_operations_config.PlainBackend"}
    settings.WS_MAX_CONNECTIONS_PER_IP = 5
    with pytest.raises(ImproperlyConfigured, match="or the PostgresBackend"):
        get_websocket_application()


async def test_without_the_migration_the_error_says_to_run_it(
    postgres_alias: str,  # noqa: F811
) -> None:
    with psycopg.connect(conninfo(postgres_alias), autocommit=True) as connection:
        connection.execute("CREATE SCHEMA IF NOT EXISTS django_ws_not_migrated")

    def params() -> dict[str, Any]:
        return {
            "conninfo": conninfo(postgres_alias),
            "options": "-c search_path=django_ws_not_migrated",
        }

    store = PostgresStore(params, unique_prefix(), timeout=5, ttl=5, process="p")
    expected = r"missing from the database \(.*run `python manage.py migrate django_ws`"
    with pytest.raises(ImproperlyConfigured, match=expected):
        await store.acquire([("ip", "10.0.0.1", 1)])
    with pytest.raises(ImproperlyConfigured, match=expected):
        store.read_snapshots()
    with pytest.raises(ImproperlyConfigured, match=expected):
        await store.close()  # its connections are closed all the same


def test_a_store_used_from_two_event_loops_reconnects_on_each(
    make_store: StoreFactory,
) -> None:
    """``async_to_sync`` and a restarted server give the store a new loop."""
    one, two = make_store("p1"), make_store("p2")
    key = ("ip", "10.0.0.1", 1)
    assert asyncio.run(one.acquire([key])) is None
    assert asyncio.run(two.acquire([key])) == key
    asyncio.run(one.release([key]))  # a third loop: the first one's connection is gone
    assert asyncio.run(two.acquire([key])) is None
