"""``broadcast_on_commit``: a broadcast sent when the database transaction commits.

The transactions run in a worker thread (``sync_to_async``), as a sync view's do
under ASGI, and really commit (``transaction=True``). Absence is proven without a
clock: after the transaction, the same thread broadcasts a marker with
``broadcast_sync``, and the marker must be the member's next message.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.exceptions import SynchronousOnlyOperation
from django.db import transaction
from django.utils.connection import ConnectionDoesNotExist

import django_ws
from django_ws.broadcast import BaseBackend, get_backend
from django_ws.broadcast.redis import RedisBackend
from django_ws.testing import WebSocketTestConnection
from tests.broadcast_support import joined, room_client

transactional = pytest.mark.django_db(transaction=True)


class Rollback(Exception):
    """Raised inside an ``atomic`` block to roll it back."""


@pytest.fixture
def backend(settings: Any) -> Iterator[BaseBackend]:
    settings.WS_BROADCAST = {"BACKEND": "django_ws.broadcast.MemoryBackend"}
    backend = get_backend()
    yield backend
    assert backend.member_count() == 0


@pytest.fixture
async def member(backend: BaseBackend) -> AsyncIterator[WebSocketTestConnection]:
    """A connection in the group ``lobby`` (greeting consumed)."""
    async with room_client().connect("/class/lobby") as ws:
        yield await joined(ws)


def in_thread(function: Callable[[], None]) -> Any:
    """Run ``function`` in the worker thread that sync views use."""
    return sync_to_async(function)()


def rolled_back(function: Callable[[], None]) -> Callable[[], None]:
    """Return ``function`` wrapped in an ``atomic`` block that is rolled back."""

    def run() -> None:
        try:
            with transaction.atomic():
                function()
                raise Rollback
        except Rollback:
            pass

    return run


def user_exists(username: str) -> Any:
    return sync_to_async(get_user_model().objects.filter(username=username).exists)()


@transactional
async def test_a_commit_sends_it_once_after_the_transaction(
    member: WebSocketTestConnection,
) -> None:
    def commit() -> None:
        with transaction.atomic():
            get_user_model().objects.create_user("alice")
            django_ws.broadcast_on_commit("lobby", {"saved": "alice"})
            django_ws.broadcast_sync("lobby", "during the transaction")
        django_ws.broadcast_sync("lobby", "marker")

    await in_thread(commit)
    assert await member.receive_json() == "during the transaction"
    assert await member.receive_json() == {"saved": "alice"}
    assert await member.receive_json() == "marker"
    assert await user_exists("alice")


@transactional
async def test_a_rollback_sends_nothing(member: WebSocketTestConnection) -> None:
    def write() -> None:
        get_user_model().objects.create_user("alice")
        django_ws.broadcast_on_commit("lobby", {"saved": "alice"})

    def roll_back_then_mark() -> None:
        rolled_back(write)()
        django_ws.broadcast_sync("lobby", "marker")

    await in_thread(roll_back_then_mark)
    assert await member.receive_json() == "marker"
    assert not await user_exists("alice")


@transactional
async def test_a_rolled_back_savepoint_drops_only_its_own_broadcasts(
    member: WebSocketTestConnection,
) -> None:
    def commit_outer() -> None:
        with transaction.atomic():
            django_ws.broadcast_on_commit("lobby", "outer, before")
            rolled_back(lambda: django_ws.broadcast_on_commit("lobby", "inner"))()
            django_ws.broadcast_on_commit("lobby", "outer, after")
        django_ws.broadcast_sync("lobby", "marker")

    await in_thread(commit_outer)
    assert [await member.receive_json() for _ in range(3)] == [
        "outer, before",
        "outer, after",
        "marker",
    ]


@transactional
async def test_a_released_savepoint_waits_for_the_outer_transaction(
    member: WebSocketTestConnection,
) -> None:
    def inner_commits() -> None:
        with transaction.atomic():
            django_ws.broadcast_on_commit("lobby", "inner")

    def roll_back_outer_then_mark() -> None:
        rolled_back(inner_commits)()
        django_ws.broadcast_sync("lobby", "marker")

    await in_thread(roll_back_outer_then_mark)
    assert await member.receive_json() == "marker"


@transactional
async def test_outside_a_transaction_it_is_sent_at_once(
    member: WebSocketTestConnection,
) -> None:
    def autocommit() -> None:
        django_ws.broadcast_on_commit("lobby", "at once")
        django_ws.broadcast_sync("lobby", "marker")

    await in_thread(autocommit)
    assert await member.receive_json() == "at once"
    assert await member.receive_json() == "marker"


@transactional
async def test_using_names_the_database_whose_commit_it_waits_for(
    member: WebSocketTestConnection,
) -> None:
    def commit() -> None:
        with transaction.atomic(using="default"):
            django_ws.broadcast_on_commit(
                "lobby", b"\x00raw", raw=True, using="default"
            )
            django_ws.broadcast_sync("lobby", "during the transaction")

    await in_thread(commit)
    assert await member.receive_json() == "during the transaction"
    assert await member.receive_bytes() == b"\x00raw"


def test_an_unknown_database_alias_raises_at_the_call() -> None:
    with pytest.raises(ConnectionDoesNotExist) as excinfo:
        django_ws.broadcast_on_commit("lobby", "x", using="replica")
    assert str(excinfo.value) == "The connection 'replica' doesn't exist."


@transactional
async def test_the_data_is_encoded_at_the_call(
    member: WebSocketTestConnection,
) -> None:
    def commit() -> None:
        data = {"items": [1]}
        with transaction.atomic():
            django_ws.broadcast_on_commit("lobby", data)
            data["items"].append(2)
        django_ws.broadcast_sync("lobby", data)

    await in_thread(commit)
    assert await member.receive_json() == {"items": [1]}
    assert await member.receive_json() == {"items": [1, 2]}


@transactional
async def test_bad_arguments_raise_at_the_call_and_register_nothing(
    member: WebSocketTestConnection,
) -> None:
    raised: list[str] = []

    def commit() -> None:
        with transaction.atomic():
            for data, raw in ((object(), False), ({"a": 1}, True)):
                try:
                    django_ws.broadcast_on_commit("lobby", data, raw=raw)
                except TypeError as error:
                    raised.append(str(error))
            try:
                django_ws.broadcast_on_commit("", "x")
            except TypeError as error:
                raised.append(str(error))
        django_ws.broadcast_sync("lobby", "marker")

    await in_thread(commit)
    assert raised == [
        "Object of type object is not JSON serializable",
        "raw broadcast takes str or bytes, not dict",
        "A group name is a non-empty str, got ''",
    ]
    assert await member.receive_json() == "marker"


@pytest.mark.django_db
def test_a_test_case_transaction_holds_it_until_callbacks_are_captured(
    backend: BaseBackend, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        django_ws.broadcast_on_commit("lobby", "x")
    assert len(callbacks) == 1


@transactional
async def test_async_code_gets_djangos_error(backend: BaseBackend) -> None:
    # Transactions live in sync code: call it there, inside the atomic block.
    with pytest.raises(SynchronousOnlyOperation) as excinfo:
        django_ws.broadcast_on_commit("lobby", "x")
    assert str(excinfo.value) == (
        "You cannot call this from an async context - use a thread or sync_to_async."
    )


@pytest.fixture
async def redis_down(settings: Any) -> AsyncIterator[RedisBackend]:
    """A Redis backend whose Redis refuses connections (nothing on port 1)."""
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"TIMEOUT": 1},
    }
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    yield backend
    await backend.stop()


@transactional
async def test_a_broadcast_error_at_commit_is_logged_and_the_commit_stands(
    redis_down: RedisBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    later_callbacks: list[str] = []

    def commit() -> None:
        with transaction.atomic():
            get_user_model().objects.create_user("alice")
            django_ws.broadcast_on_commit("lobby", {"saved": "alice"})
            transaction.on_commit(lambda: later_callbacks.append("ran"))

    await in_thread(commit)  # does not raise: the commit has happened
    assert await user_exists("alice")
    assert later_callbacks == ["ran"]
    records = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert len(records) == 1, records
    name, level, message = records[0]
    assert (name, level) == ("django_ws", "ERROR")
    assert message.startswith(
        "A broadcast to group 'lobby' after a commit did not reach every process: "
        "Redis at redis://127.0.0.1:1/0 did not answer within 1 s: "
    )
