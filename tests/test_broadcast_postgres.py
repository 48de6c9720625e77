"""Groups and broadcast through ``PostgresBackend``, in-process against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

import django_ws
from django_ws import connection_ids
from django_ws.broadcast import Presence, get_backend
from django_ws.broadcast import postgres_sql as sql
from django_ws.broadcast.postgres import PostgresBackend
from django_ws.broadcast.postgres_schema import DROP
from django_ws.operations.postgres_tables import DROP as DROP_OPERATIONS
from django_ws.testing import WebSocketTestClient
from tests.broadcast_support import (
    GroupBehaviour,
    application,
    assert_nothing_else_arrives,
    connections,
    joined,
    room_client,
)
from tests.postgres_support import (  # noqa: F401 - fixtures
    POSTGRES_BACKEND,
    UsePostgres,
    closing,
    conninfo,
    notify,
    postgres_alias,
    private_postgres,
    use_postgres,
)
from tests.private_postgres import PrivatePostgres


@pytest.fixture
def backend(postgres_alias: str, use_postgres: UsePostgres) -> PostgresBackend:
    return use_postgres(postgres_alias)


class TestPostgresBackend(GroupBehaviour):
    """Every group behaviour, through PostgreSQL."""


def plain(text: str, sender: str = "other-process", serial: int = 1) -> str:
    message = {"type": "websocket.send", "text": text}
    payload, stored = sql.plain_notify(message, frozenset(), sender, serial, True)
    assert stored is None
    return payload


# Payloads ---------------------------------------------------------------------------


def test_payload_round_trip() -> None:
    text = {"type": "websocket.send", "text": "héllo\nworld"}
    binary = {"type": "websocket.send", "bytes": b"\n\x00\xff"}
    payload, stored = sql.plain_notify(text, frozenset({"p:2", "p:1"}), "p", 7, True)
    assert stored is None
    assert sql.decode_plain(payload) == sql.Plain("p", True, frozenset({"p:1", "p:2"}), text)
    payload, stored = sql.plain_notify(binary, frozenset(), "p", 8, False)
    assert (payload, stored) == ("bp\n8\n\n\nCgD/", None)
    assert sql.decode_plain(payload) == sql.Plain("p", False, frozenset(), binary)


def test_a_payload_over_the_notify_limit_is_stored_never_cut() -> None:
    big = {"type": "websocket.send", "text": "é" * 4000}  # 8000 bytes
    payload, stored = sql.plain_notify(big, frozenset(), "p", 1, True)
    assert payload == "rp\n1\n1\n\n"
    assert stored == (True, b"\n" + ("é" * 4000).encode())
    assert sql.stored_message(*stored) == (frozenset(), big)
    with_nul = {"type": "websocket.send", "text": "a\x00b"}
    assert sql.plain_notify(with_nul, frozenset(), "p", 2, True)[1] == (True, b"\na\x00b")
    # A long exclusion list travels in the row too, never in the NOTIFY.
    many = frozenset(f"{n:06}-process:{n}" for n in range(1000))
    payload, stored = sql.plain_notify({"type": "websocket.send", "text": "hi"}, many, "p", 3, True)
    assert payload == "rp\n3\n1\n\n" and stored is not None
    assert sql.stored_message(*stored) == (many, {"type": "websocket.send", "text": "hi"})


def test_channels_are_short_identifiers_whatever_the_group() -> None:
    assert sql.channel("django_ws", "x" * 5000) == sql.channel("django_ws", "x" * 5000)
    assert len(sql.channel("a" * 30, "x" * 5000).encode()) <= 63
    assert sql.channel("p", "lobby") != sql.channel("p", "lobby2")


# Messages between processes ------------------------------------------------------


async def test_a_broadcast_from_another_process_reaches_local_members(
    backend: PostgresBackend,
) -> None:
    client = room_client()
    url = "/class/lobby"
    async with (
        client.connect(url, query_string={"name": "a"}) as a,
        client.connect(url, query_string={"name": "b"}) as b,
    ):
        await joined(a), await joined(b)
        notify(backend.alias, backend.channel("lobby"), plain('{"from":"elsewhere"}'))
        assert await a.receive_json() == {"from": "elsewhere"}
        assert await b.receive_json() == {"from": "elsewhere"}
        excluded = connections["a"].connection_id
        notify(
            backend.alias,
            backend.channel("lobby"),
            f"tother\n2\n1\n{excluded}\n" + '{"not":"a"}',
        )
        assert await b.receive_json() == {"not": "a"}
        await assert_nothing_else_arrives("lobby", a)


async def test_one_notify_per_broadcast_whatever_the_member_count(
    backend: PostgresBackend,
) -> None:
    client = WebSocketTestClient(application())
    observer = await psycopg.AsyncConnection.connect(conninfo(backend.alias), autocommit=True)
    await observer.execute(f'LISTEN "{backend.channel("one")}"')
    try:
        async with AsyncExitStack() as stack:
            members = [
                await joined(await stack.enter_async_context(client.connect("/class/one")))
                for _ in range(30)
            ]
            await django_ws.broadcast("one", {"n": 30})
            for member in members:
                assert await member.receive_json() == {"n": 30}
            seen = [n.payload async for n in observer.notifies(timeout=0.5)]
            assert len(seen) == 1 and seen[0].endswith('{"n":30}')
    finally:
        await observer.close()


@pytest.mark.parametrize("size", [8_000, 100_000])
async def test_a_large_message_arrives_whole(
    backend: PostgresBackend, size: int
) -> None:
    client = room_client()
    async with client.connect("/class/lobby") as ws:
        await joined(ws)
        text = "é" * (size // 2)
        await django_ws.broadcast("lobby", text)  # this process: at once
        assert await ws.receive_json() == text
        blob = bytes(range(256)) * (size // 256)
        message = {"type": "websocket.send", "bytes": blob}
        payload, stored = sql.plain_notify(message, frozenset(), "other", 1, True)
        assert stored is not None
        with psycopg.connect(conninfo(backend.alias), autocommit=True) as other:
            other.execute(
                sql.NOTIFY_STORED, (*stored, 60.0, backend.channel("lobby"), payload)
            )
        assert await ws.receive_bytes() == blob
        await sync_to_async(django_ws.broadcast_sync)("lobby", text)
        assert await ws.receive_json() == text


class Elsewhere:
    """A member of another process, as ``exclude`` sees it."""

    def __init__(self, number: int) -> None:
        self.connection_id = f"{number:06}-elsewhere:{number}"


@pytest.mark.parametrize("group", ["lobby", "room-x"])
async def test_a_long_exclusion_list_never_makes_a_notify_too_long(
    postgres_alias: str, use_postgres: UsePostgres, group: str
) -> None:
    use_postgres(postgres_alias, HISTORY={"room-*": {"SIZE": 5, "TTL": 60}})
    client = room_client()
    url = f"/class/{group}"
    async with (
        client.connect(url, query_string={"name": "a"}) as a,
        client.connect(url, query_string={"name": "b"}) as b,
    ):
        await joined(a), await joined(b)
        exclude = [connections["a"], *(Elsewhere(n) for n in range(1000))]
        await django_ws.broadcast(group, "not to a", exclude=exclude)  # type: ignore[arg-type]
        await asyncio.to_thread(django_ws.broadcast_sync, group, "again", exclude)

        def data(frame: Any) -> Any:
            return frame["data"] if isinstance(frame, dict) else frame

        for text in ("not to a", "again"):
            assert data(await b.receive_json()) == text
        await django_ws.broadcast(group, "marker")
        assert data(await a.receive_json()) == "marker"


async def test_a_stored_payload_is_deleted_after_its_ttl(
    backend: PostgresBackend,
) -> None:
    with psycopg.connect(conninfo(backend.alias), autocommit=True) as other:
        row = other.execute(
            "INSERT INTO django_ws_payload (is_text, body, expires) VALUES "
            "(true, 'old', clock_timestamp() - interval '1 second') RETURNING id"
        ).fetchone()
        assert row is not None
        await backend.sweep()
        assert other.execute(
            "SELECT count(*) FROM django_ws_payload WHERE id = %s", (row[0],)
        ).fetchone() == (0,)


# Transactions ---------------------------------------------------------------------


async def test_broadcast_sync_in_a_transaction_arrives_at_commit_only(
    backend: PostgresBackend,
) -> None:
    client = room_client()
    async with client.connect("/class/lobby") as ws:
        await joined(ws)

        def commit() -> None:
            with transaction.atomic(using=backend.alias):
                django_ws.broadcast_sync("lobby", "committed")
                assert backend.in_transaction()

        def roll_back() -> None:
            with pytest.raises(ZeroDivisionError):
                with transaction.atomic(using=backend.alias):
                    django_ws.broadcast_sync("lobby", "rolled back")
                    1 / 0

        await sync_to_async(closing(backend.alias, roll_back))()
        await sync_to_async(closing(backend.alias, commit))()
        assert await ws.receive_json() == "committed"
        await assert_nothing_else_arrives("lobby", ws)


async def test_a_transaction_holds_its_broadcast_until_it_commits(
    backend: PostgresBackend,
) -> None:
    client = room_client()
    async with client.connect("/class/lobby") as ws:
        await joined(ws)
        inside, release = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()

        def open_transaction() -> None:
            with transaction.atomic(using=backend.alias):
                django_ws.broadcast_sync("lobby", "after commit")
                loop.call_soon_threadsafe(inside.set)
                asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)

        done = asyncio.ensure_future(sync_to_async(closing(backend.alias, open_transaction))())
        await inside.wait()
        await django_ws.broadcast("lobby", "during")  # another connection: not held
        assert await ws.receive_json() == "during"
        release.set()
        await done
        assert await ws.receive_json() == "after commit"


# Presence ---------------------------------------------------------------------------


async def test_presence_adds_up_processes_and_drops_dead_ones(
    backend: PostgresBackend,
) -> None:
    client = WebSocketTestClient(application())
    async with client.connect("/class/lobby") as ws:
        await joined(ws)
        with psycopg.connect(conninfo(backend.alias), autocommit=True) as other:
            other.execute(
                sql.WRITE_PRESENCE, (backend.prefix, "lobby", "dead-1", 2, "[42,7]", 0.5)
            )
            assert await django_ws.presence("lobby") == Presence(count=3, users=[7, 42])
            deadline = time.monotonic() + 5
            while (await django_ws.presence("lobby")).count != 1:
                assert time.monotonic() < deadline, "the dead process is still counted"
                await asyncio.sleep(0.1)
            await backend.sweep()
            rows = other.execute(
                "SELECT process FROM django_ws_presence WHERE namespace = %s",
                (backend.prefix,),
            ).fetchall()
            assert rows == [(connection_ids.process_id(),)]


# Configuration ------------------------------------------------------------------------


def test_an_unknown_alias_fails_at_startup(settings: Any) -> None:
    settings.WS_BROADCAST = {"BACKEND": POSTGRES_BACKEND, "LOCATION": "nowhere"}
    with pytest.raises(ImproperlyConfigured) as excinfo:
        django_ws.get_websocket_application()
    assert str(excinfo.value) == (
        "WS_BROADCAST['LOCATION'] is 'nowhere'; the PostgresBackend needs the alias "
        "of a PostgreSQL database in DATABASES (one of ['default', 'postgres', "
        "'postgres_private']), e.g. 'default'."
    )


def test_a_database_that_is_not_postgresql_fails_at_startup(settings: Any) -> None:
    settings.WS_BROADCAST = {"BACKEND": POSTGRES_BACKEND, "LOCATION": "default"}
    with pytest.raises(ImproperlyConfigured) as excinfo:
        django_ws.get_websocket_application()
    assert str(excinfo.value) == (
        "WS_BROADCAST['LOCATION'] is 'default', whose ENGINE is "
        "'django.db.backends.sqlite3'; the PostgresBackend needs a database with "
        "ENGINE 'django.db.backends.postgresql'. Name another alias, or use "
        "'django_ws.broadcast.RedisBackend' or 'MemoryBackend'."
    )


@pytest.mark.parametrize(
    "options, message",
    [
        (
            {"TIMEOUTS": 1},
            "WS_BROADCAST['OPTIONS'] has unknown keys ['TIMEOUTS']; the PostgresBackend "
            "takes ['PAYLOAD_TTL', 'PREFIX', 'PRESENCE_TTL', 'RECONNECT_MAX', 'TIMEOUT'].",
        ),
        (
            {"PAYLOAD_TTL": 0},
            "WS_BROADCAST['OPTIONS']['PAYLOAD_TTL'] must be a positive number of "
            "seconds, got 0.",
        ),
        (
            {"PREFIX": "has-dash"},
            "WS_BROADCAST['OPTIONS']['PREFIX'] must be 1 to 30 letters, digits or "
            "underscores (it starts NOTIFY channel names), got 'has-dash'.",
        ),
    ],
)
def test_bad_options_fail_at_startup(
    settings: Any, options: dict[str, Any], message: str
) -> None:
    settings.WS_BROADCAST = {
        "BACKEND": POSTGRES_BACKEND,
        "LOCATION": "postgres",
        "OPTIONS": options,
    }
    with pytest.raises(ImproperlyConfigured) as excinfo:
        django_ws.get_websocket_application()
    assert str(excinfo.value) == message


def test_configuring_does_not_connect(settings: Any) -> None:
    # No server on the private alias's port now: building the app still works.
    settings.WS_BROADCAST = {"BACKEND": POSTGRES_BACKEND, "LOCATION": "postgres_private"}
    django_ws.get_websocket_application()
    assert isinstance(get_backend(), PostgresBackend)


# Faults ---------------------------------------------------------------------------------


async def test_postgres_restarted_broadcast_error_then_listen_again(
    private_postgres: PrivatePostgres,
    use_postgres: UsePostgres,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="django_ws")
    backend = use_postgres("postgres_private", TIMEOUT=1, RECONNECT_MAX=0.5)
    client = WebSocketTestClient(application())
    async with client.connect("/class/lobby") as a, client.connect("/class/lobby") as b:
        await joined(a), await joined(b)
        private_postgres.stop()

        started = time.monotonic()
        with pytest.raises(django_ws.BroadcastError, match="did not answer within 1 s"):
            await django_ws.broadcast("lobby", {"text": "while down"})
        assert await a.receive_json() == {"text": "while down"}
        assert await b.receive_json() == {"text": "while down"}
        with pytest.raises(django_ws.BroadcastError, match="did not answer within 1 s"):
            await asyncio.to_thread(django_ws.broadcast_sync, "lobby", "sync")
        assert time.monotonic() - started < 10
        assert await a.receive_json() == "sync"
        assert await b.receive_json() == "sync"
        with pytest.raises(django_ws.BroadcastError):
            await django_ws.presence("lobby")
        await a.send_json({"say": "from a socket"})  # the socket goes on serving
        assert await a.receive_json() == {"text": "from a socket"}
        assert await a.receive_json() == {"error": "broadcast failed"}
        assert await b.receive_json() == {"text": "from a socket"}

        private_postgres.start()
        deadline = time.monotonic() + 15
        serial = 0
        while True:  # until the listener is back: then the marker arrives
            serial += 1
            notify(backend.alias, backend.channel("lobby"), plain('"back"', serial=serial))
            try:
                assert await a.receive_json(timeout=0.5) == "back"
                break
            except asyncio.TimeoutError:
                assert time.monotonic() < deadline, "the backend did not LISTEN again"
        assert await b.receive_json() == "back"
        await django_ws.broadcast("lobby", "after")
        while (message := await b.receive_json()) == "back":
            pass  # markers sent while a was being read
        assert message == "after"
        assert await django_ws.presence("lobby") == Presence(count=2, users=[])

    messages = [r.getMessage() for r in caplog.records if "PostgreSQL (database" in r.getMessage()]
    assert messages[0].startswith(
        "Lost the LISTEN connection to PostgreSQL (database 'postgres_private') ("
    )
    assert messages[-1] == (
        "Reconnected to PostgreSQL (database 'postgres_private'); listening again "
        "to 1 groups"
    )


# The migration ------------------------------------------------------------------------

TABLES = [
    ("django_ws_group_log",),
    ("django_ws_group_message",),
    ("django_ws_ops_count",),
    ("django_ws_ops_snapshot",),
    ("django_ws_payload",),
    ("django_ws_presence",),
]


def test_the_migration_creates_the_tables_on_postgresql_only(
    private_postgres: PrivatePostgres,
) -> None:
    from django.core.management import call_command
    from django.db import connections as databases

    with psycopg.connect(private_postgres.conninfo, autocommit=True) as other:
        other.execute(DROP.encode())
        other.execute(DROP_OPERATIONS.encode())
        call_command("migrate", "django_ws", database="postgres_private", verbosity=0)
        found = other.execute(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'django_ws_%%' "
            "ORDER BY 1"
        ).fetchall()
        assert found == TABLES
        call_command("migrate", "django_ws", "zero", database="postgres_private", verbosity=0)
        assert other.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'django_ws_%%'"
        ).fetchone() == (0,)
    databases["postgres_private"].close()


@pytest.mark.django_db
def test_on_sqlite_the_migration_creates_nothing() -> None:
    from django.db import connection

    assert [t for t in connection.introspection.table_names() if t.startswith("django_ws")] == []


@pytest.fixture
async def silent_postgres() -> AsyncIterator[str]:
    """On the private alias's port, a server that accepts and never answers: hung."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)
        await reader.read()  # until the client gives up

    port = int(django_settings.DATABASES["postgres_private"]["PORT"])
    server = await asyncio.start_server(hold, "127.0.0.1", port)
    yield "postgres_private"
    server.close()
    for writer in accepted:
        writer.close()
    await server.wait_closed()


async def test_a_hung_postgres_never_hangs_a_broadcast(
    silent_postgres: str, use_postgres: UsePostgres
) -> None:
    use_postgres(silent_postgres, TIMEOUT=1)
    client = WebSocketTestClient(application())
    async with client.connect("/class/lobby") as ws:
        await joined(ws)  # joining waits for PostgreSQL no longer than TIMEOUT
        started = time.monotonic()
        with pytest.raises(django_ws.BroadcastError, match="did not answer within 1 s"):
            await django_ws.broadcast("lobby", "local")
        with pytest.raises(django_ws.BroadcastError, match="did not answer within 1 s"):
            await asyncio.to_thread(django_ws.broadcast_sync, "lobby", "local too")
        with pytest.raises(django_ws.BroadcastError, match="did not answer within 1 s"):
            await django_ws.presence("lobby")
        assert time.monotonic() - started < 10
        assert await ws.receive_json() == "local"
        assert await ws.receive_json() == "local too"
