"""Groups with history on ``PostgresBackend``, in-process against a real PostgreSQL.

The memory backend's history behaviours run here again over PostgreSQL (imported
from ``test_history_groups``, with this module's ``backend``); then what is
PostgreSQL's own: the tables, trimming, large messages, and the repair of gaps
after a lost notification or a restarted server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest

import django_ws
from django_ws.broadcast import postgres_sql as sql
from django_ws.broadcast.postgres import PostgresBackend
from django_ws.exceptions import BroadcastError
from django_ws.testing import WebSocketTestConnection
from tests.broadcast_support import RecordedEvents, connections, joined, room_client
from tests.postgres_support import (  # noqa: F401 - fixtures
    UsePostgres,
    closing,
    conninfo,
    postgres_alias,
    private_postgres,
    use_postgres,
)
from tests.private_postgres import PrivatePostgres
from tests.test_history_groups import (  # noqa: F401 - run again over PostgreSQL
    frame,
    member_of_room_a,
    recovered,
    say,
    since,
    test_a_broadcast_racing_the_replay_arrives_once_after_it,
    test_a_gap_longer_than_the_history_is_not_recovered,
    test_a_gap_the_history_still_holds_is_recovered_whole,
    test_a_group_without_history_is_unchanged,
    test_a_history_group_wraps_each_message_with_its_position,
    test_a_hostile_ws_since_neither_fails_the_handshake_nor_the_join,
    test_a_member_at_the_current_position_recovers_nothing_missed,
    test_a_member_closed_during_its_replay_leaves_nothing_behind,
    test_a_reconnecting_member_gets_what_it_missed_then_live,
    test_an_offered_position_does_not_join_by_itself,
    test_an_offered_position_is_used_by_the_first_join_only,
    test_another_epoch_is_not_recovered_and_nothing_replayed,
    test_broadcasts_from_threads_reach_members_in_offset_order,
    test_position_is_zero_before_any_message,
    test_raw_to_a_history_group_is_a_type_error,
)

HISTORY = {"room-*": {"SIZE": 5, "TTL": 600}}


@pytest.fixture
def backend(postgres_alias: str, use_postgres: UsePostgres) -> PostgresBackend:
    return use_postgres(postgres_alias, HISTORY=HISTORY, PRESENCE_TTL=600)


@pytest.fixture
def other(backend: PostgresBackend) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(conninfo(backend.alias), autocommit=True) as other:
        yield other


def publish_unseen(
    other: psycopg.Connection[Any], backend: PostgresBackend, group: str, *numbers: int
) -> None:
    """Append to ``group``'s history as a broadcast would, but announce it nowhere.

    The processes listening to the group see the next message skip offsets, as
    after a lost notification.
    """
    for number in numbers:
        params = backend._history_params(
            group,
            backend.policy_of(group),
            {"type": "websocket.send", "text": f'{{"n":{number}}}'},
            frozenset(),
        )
        other.execute(sql.PUBLISH_HISTORY, {**params, "channel": "nobody_listens"})


@pytest.fixture
async def member(backend: PostgresBackend) -> AsyncIterator[WebSocketTestConnection]:
    async with room_client().connect("/class/room-a") as member:
        yield await joined(member)


def rows(other: psycopg.Connection[Any], backend: PostgresBackend, table: str) -> int:
    found = other.execute(
        f"SELECT count(*) FROM {table} WHERE namespace = %s", (backend.prefix,)
    ).fetchone()
    assert found is not None
    return int(found[0])


async def test_one_notify_per_broadcast_and_size_messages_kept(
    backend: PostgresBackend, member: WebSocketTestConnection, other: psycopg.Connection[Any]
) -> None:
    observer = await psycopg.AsyncConnection.connect(conninfo(backend.alias), autocommit=True)
    try:
        await observer.execute(f'LISTEN "{backend.channel("room-a")}"')
        epoch, _ = await django_ws.position("room-a")
        await say("room-a", *range(1, 8))
        for number in range(1, 8):
            assert await member.receive_json() == frame("room-a", epoch, number, {"n": number})
        seen = [n.payload async for n in observer.notifies(timeout=0.5)]
        assert seen == [f'h\n{epoch}\n{n}\n{{"n":{n}}}' for n in range(1, 8)]
    finally:
        await observer.close()
    assert rows(other, backend, "django_ws_group_message") == 5  # SIZE, exactly
    assert other.execute(
        "SELECT last_offset, expires - clock_timestamp() > interval '599 s' "
        "FROM django_ws_group_log WHERE namespace = %s",
        (backend.prefix,),
    ).fetchone() == (7, True)


async def test_a_history_message_over_the_notify_limit_arrives_whole(
    backend: PostgresBackend, member: WebSocketTestConnection
) -> None:
    epoch, _ = await django_ws.position("room-a")
    text = "é" * 50_000  # 100 KB
    await django_ws.broadcast("room-a", text)
    await asyncio.to_thread(django_ws.broadcast_sync, "room-a", text)
    assert await member.receive_json() == frame("room-a", epoch, 1, text)
    assert await member.receive_json() == frame("room-a", epoch, 2, text)
    offered = since({"room-a": [epoch, 0]})
    async with room_client().connect("/class/room-a", query_string=offered) as late:
        assert await late.receive_json() == recovered("room-a", True, epoch, 0, 2)
        assert await late.receive_json() == frame("room-a", epoch, 1, text)


async def test_expired_history_is_swept_and_starts_a_new_epoch(
    backend: PostgresBackend, other: psycopg.Connection[Any]
) -> None:
    await say("room-a", 1, 2)
    old, _ = django_ws.position_sync("room-a")
    other.execute(
        "UPDATE django_ws_group_log SET expires = clock_timestamp() - interval '1 s' "
        "WHERE namespace = %s",
        (backend.prefix,),
    )
    other.execute(
        "UPDATE django_ws_group_message SET expires = clock_timestamp() - interval '1 s' "
        "WHERE namespace = %s",
        (backend.prefix,),
    )
    await backend.sweep()
    assert rows(other, backend, "django_ws_group_log") == 0
    assert rows(other, backend, "django_ws_group_message") == 0
    epoch, offset = django_ws.position_sync("room-a")
    assert epoch != old and offset == 0
    offered = since({"room-a": [old, 2]})
    async with room_client().connect("/class/room-a", query_string=offered) as member:
        assert await member.receive_json() == recovered("room-a", False, epoch, 0, 0)


async def test_messages_older_than_the_ttl_are_not_recovered(
    postgres_alias: str, use_postgres: UsePostgres
) -> None:
    use_postgres(postgres_alias, HISTORY={"room-*": {"SIZE": 5, "TTL": 0.5}})
    epoch, _ = await django_ws.position("room-a")
    await say("room-a", 1)
    await asyncio.sleep(0.35)
    await say("room-a", 2)
    offered = since({"room-a": [epoch, 0]})
    async with room_client().connect("/class/room-a", query_string=offered) as m:
        assert await m.receive_json() == recovered("room-a", True, epoch, 0, 2)
    await asyncio.sleep(0.25)  # 1 is older than the TTL, 2 is not
    async with room_client().connect("/class/room-a", query_string=offered) as m:
        assert await m.receive_json() == recovered("room-a", False, epoch, 2, 0)
    offered = since({"room-a": [epoch, 1]})
    async with room_client().connect("/class/room-a", query_string=offered) as m:
        assert await m.receive_json() == recovered("room-a", True, epoch, 1, 1)
        assert await m.receive_json() == frame("room-a", epoch, 2, {"n": 2})


async def test_a_skipped_offset_is_read_from_the_table_before_the_next(
    backend: PostgresBackend, member: WebSocketTestConnection, other: psycopg.Connection[Any]
) -> None:
    backend.events = events = RecordedEvents()
    epoch, _ = await django_ws.position("room-a")
    await say("room-a", 1)
    assert await member.receive_json() == frame("room-a", epoch, 1, {"n": 1})
    publish_unseen(other, backend, "room-a", 2, 3)
    await say("room-a", 4)
    for number in (2, 3, 4):
        assert await member.receive_json() == frame("room-a", epoch, number, {"n": number})
    await member.assert_nothing_received(0.1)
    assert events.seen == ["gap:repaired"]


async def test_a_gap_the_table_lost_sends_recovered_false_then_live(
    backend: PostgresBackend, member: WebSocketTestConnection, other: psycopg.Connection[Any]
) -> None:
    backend.events = events = RecordedEvents()
    epoch, _ = await django_ws.position("room-a")
    await say("room-a", 1)
    assert await member.receive_json() == frame("room-a", epoch, 1, {"n": 1})
    publish_unseen(other, backend, "room-a", *range(2, 9))  # SIZE 5 keeps 4..8
    await say("room-a", 9)
    assert await member.receive_json() == recovered("room-a", False, epoch, 8, 0)
    assert await member.receive_json() == frame("room-a", epoch, 9, {"n": 9})
    await member.assert_nothing_received(0.1)
    assert events.seen == ["gap:lost"]


async def test_a_rolled_back_history_broadcast_takes_no_offset(
    backend: PostgresBackend, member: WebSocketTestConnection
) -> None:
    from django.db import transaction

    epoch, _ = await django_ws.position("room-a")

    def roll_back() -> None:
        with pytest.raises(ZeroDivisionError):
            with transaction.atomic(using=backend.alias):
                django_ws.broadcast_sync("room-a", {"n": "rolled back"})
                1 / 0

    def commit() -> None:
        with transaction.atomic(using=backend.alias):
            django_ws.broadcast_sync("room-a", {"n": 1})

    await asyncio.to_thread(closing(backend.alias, roll_back))
    await asyncio.to_thread(closing(backend.alias, commit))
    assert await member.receive_json() == frame("room-a", epoch, 1, {"n": 1})
    await member.assert_nothing_received(0.1)


async def test_exclude_works_in_a_group_with_history(backend: PostgresBackend) -> None:
    client = room_client()
    url = "/class/room-a"
    async with (
        client.connect(url, query_string={"name": "a"}) as a,
        client.connect(url, query_string={"name": "b"}) as b,
    ):
        await joined(a), await joined(b)
        epoch, _ = await django_ws.position("room-a")
        await django_ws.broadcast("room-a", {"n": 1}, exclude=connections["a"])
        await say("room-a", 2)
        assert await a.receive_json() == frame("room-a", epoch, 2, {"n": 2})
        assert await b.receive_json() == frame("room-a", epoch, 1, {"n": 1})
        assert await b.receive_json() == frame("room-a", epoch, 2, {"n": 2})


async def test_a_restart_loses_nothing_the_table_holds(
    private_postgres: PrivatePostgres, use_postgres: UsePostgres
) -> None:
    backend = use_postgres(
        "postgres_private", HISTORY=HISTORY, TIMEOUT=1, RECONNECT_MAX=0.3
    )
    async with room_client().connect("/class/room-a") as member:
        await joined(member)
        epoch, _ = await django_ws.position("room-a")
        await say("room-a", 1)
        assert await member.receive_json() == frame("room-a", epoch, 1, {"n": 1})
        await asyncio.to_thread(private_postgres.stop)
        started = time.monotonic()
        with pytest.raises(BroadcastError, match="did not answer within 1 s"):
            await say("room-a", 2)
        with pytest.raises(BroadcastError, match="did not answer within 1 s"):
            await asyncio.to_thread(django_ws.broadcast_sync, "room-a", {"n": 2})
        with pytest.raises(BroadcastError):
            await asyncio.to_thread(django_ws.position_sync, "room-a")
        assert time.monotonic() - started < 10
        await asyncio.to_thread(private_postgres.start)
        # Published by another process, announced to nobody, while this one
        # LISTENs again or not yet: repaired at reconnection or before 4.
        with psycopg.connect(private_postgres.conninfo, autocommit=True) as other:
            publish_unseen(other, backend, "room-a", 2, 3)
        deadline = time.monotonic() + 10
        while True:  # a publisher retries until PostgreSQL answers
            try:
                await say("room-a", 4)
                break
            except BroadcastError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        for number in (2, 3, 4):
            assert await member.receive_json(timeout=10) == frame(
                "room-a", epoch, number, {"n": number}
            )
        await member.assert_nothing_received(0.1)


async def test_joining_while_postgres_is_down_neither_fails_nor_waits(
    private_postgres: PrivatePostgres, use_postgres: UsePostgres
) -> None:
    use_postgres("postgres_private", HISTORY=HISTORY, TIMEOUT=1, RECONNECT_MAX=0.3)
    epoch, _ = await django_ws.position("room-a")
    await say("room-a", 1)
    await asyncio.to_thread(private_postgres.stop)
    offered = since({"room-a": [epoch, 0]})
    client = room_client()
    async with (
        client.connect("/class/room-a", query_string=offered) as recovering,
        client.connect("/class/room-a") as plain,
    ):
        assert await recovering.receive_json() == recovered("room-a", False, epoch, 0, 0)
        assert await recovering.receive_json() == {"joined": "room-a"}
        assert await plain.receive_json() == {"joined": "room-a"}
        await asyncio.to_thread(private_postgres.start)
        # Back with its data: both learn where the group is, unrecovered.
        for member in (recovering, plain):
            assert await member.receive_json(timeout=15) == recovered(
                "room-a", False, epoch, 1, 0
            )
        deadline = time.monotonic() + 10
        while True:
            try:
                await say("room-a", 2)
                break
            except BroadcastError:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        for member in (recovering, plain):
            assert await member.receive_json() == frame("room-a", epoch, 2, {"n": 2})


async def test_a_history_that_went_back_starts_a_new_epoch_instead_of_reusing_offsets(
    backend: PostgresBackend, member: WebSocketTestConnection, other: psycopg.Connection[Any]
) -> None:
    # A failover to a standby that missed the last commits: the group is at the
    # same epoch but behind what members saw. Reusing offsets 2 and 3 for new
    # messages would get them dropped as duplicates; a new epoch is announced.
    backend.events = events = RecordedEvents()
    old, _ = await django_ws.position("room-a")
    await say("room-a", 1, 2, 3)
    for number in (1, 2, 3):
        assert await member.receive_json() == frame("room-a", old, number, {"n": number})
    other.execute(
        "UPDATE django_ws_group_log SET last_offset = 1 "
        "WHERE namespace = %s AND group_name = %s",
        (backend.prefix, "room-a"),
    )
    other.execute(  # what the standby had
        "DELETE FROM django_ws_group_message WHERE namespace = %s AND message_offset > 1",
        (backend.prefix,),
    )
    listening = other.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = %s",
        (f'LISTEN "{backend.channel("room-a")}"',),
    ).fetchall()
    assert len(listening) == 1, "the backend's LISTEN connection was not found"
    start = await member.receive_json(timeout=10)
    new = start["epoch"]
    assert new != old
    assert start == recovered("room-a", False, new, 0, 0)
    await say("room-a", 4)
    assert await member.receive_json() == frame("room-a", new, 1, {"n": 4})
    await member.assert_nothing_received(0.1)
    assert events.seen[:1] == ["reconnecting"]
    assert "gap:lost" in events.seen
