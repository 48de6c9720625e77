"""Groups with history on the memory backend, through the in-process test client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

import django_ws
from django_ws import get_websocket_application
from django_ws.broadcast import BaseBackend, MemoryBackend, get_backend
from django_ws.broadcast.history import HistoryPolicy
from django_ws.testing import WebSocketTestConnection
from tests.broadcast_support import joined, room_client

HISTORY = {"room-*": {"SIZE": 5, "TTL": 600}}


@pytest.fixture
def backend(settings: Any) -> Iterator[BaseBackend]:
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.MemoryBackend",
        "HISTORY": HISTORY,
    }
    backend = get_backend()
    yield backend
    assert backend.member_count() == 0


def since(positions: dict[str, list[Any]]) -> dict[str, str]:
    return {"ws_since": json.dumps(positions)}


def frame(group: str, epoch: str, offset: int, data: Any) -> dict[str, Any]:
    return {"group": group, "epoch": epoch, "offset": offset, "data": data}


def recovered(
    group: str, ok: bool, epoch: str, offset: int, missed: int
) -> dict[str, Any]:
    return {
        "group": group,
        "recovered": ok,
        "epoch": epoch,
        "offset": offset,
        "missed": missed,
    }


async def say(group: str, *numbers: int) -> None:
    for number in numbers:
        await django_ws.broadcast(group, {"n": number})


@pytest.fixture
async def member_of_room_a(
    backend: BaseBackend, form: str
) -> AsyncIterator[WebSocketTestConnection]:
    async with room_client().connect(f"/{form}/room-a") as member:
        yield await joined(member)


async def test_a_history_group_wraps_each_message_with_its_position(
    member_of_room_a: WebSocketTestConnection,
) -> None:
    await say("room-a", 1, 2)
    epoch, offset = django_ws.position_sync("room-a")
    assert offset == 2
    assert await member_of_room_a.receive_json() == frame("room-a", epoch, 1, {"n": 1})
    assert await member_of_room_a.receive_json() == frame("room-a", epoch, 2, {"n": 2})


async def test_the_envelope_is_built_once_per_broadcast(
    backend: BaseBackend, form: str
) -> None:
    client = room_client()
    async with client.connect(f"/{form}/room-a") as a, client.connect(
        f"/{form}/room-a"
    ) as b:
        await joined(a), await joined(b)
        await say("room-a", 1)
        await a.receive_json(), await b.receive_json()
        first, second = (
            [e for e in c.events if e["type"] == "websocket.send"][-1] for c in (a, b)
        )
        assert first is second


async def test_position_is_zero_before_any_message(backend: BaseBackend) -> None:
    epoch, offset = await django_ws.position("room-new")
    assert offset == 0
    assert django_ws.position_sync("room-new") == (epoch, 0)


async def test_position_of_a_group_without_history_is_an_error(
    backend: BaseBackend,
) -> None:
    with pytest.raises(ValueError) as excinfo:
        await django_ws.position("lobby")
    assert str(excinfo.value) == (
        "Group 'lobby' keeps no history: add a pattern that matches it to "
        "WS_BROADCAST['HISTORY']."
    )


async def test_raw_to_a_history_group_is_a_type_error(backend: BaseBackend) -> None:
    message = (
        "Group 'room-a' keeps history, which carries JSON data only: broadcast it "
        "without raw=True."
    )
    with pytest.raises(TypeError) as excinfo:
        await django_ws.broadcast("room-a", "text", raw=True)
    assert str(excinfo.value) == message
    with pytest.raises(TypeError):
        django_ws.broadcast_sync("room-a", b"bytes", raw=True)
    with pytest.raises(TypeError):
        django_ws.broadcast_on_commit("room-a", "text", raw=True)


async def test_a_reconnecting_member_gets_what_it_missed_then_live(
    backend: BaseBackend, form: str
) -> None:
    await say("room-a", 1, 2, 3)
    epoch, _ = django_ws.position_sync("room-a")
    await say("room-a", 4, 5)
    offered = since({"room-a": [epoch, 3], "room-b": [epoch, 1]})
    async with room_client().connect(f"/{form}/room-a", query_string=offered) as member:
        assert await member.receive_json() == recovered("room-a", True, epoch, 3, 2)
        assert await member.receive_json() == frame("room-a", epoch, 4, {"n": 4})
        assert await member.receive_json() == frame("room-a", epoch, 5, {"n": 5})
        assert await member.receive_json() == {"joined": "room-a"}
        await say("room-a", 6)
        assert await member.receive_json() == frame("room-a", epoch, 6, {"n": 6})
        await member.assert_nothing_received(0.05)


async def test_a_member_at_the_current_position_recovers_nothing_missed(
    backend: BaseBackend, form: str
) -> None:
    await say("room-a", 1)
    epoch, _ = django_ws.position_sync("room-a")
    offered = since({"room-a": [epoch, 1]})
    async with room_client().connect(f"/{form}/room-a", query_string=offered) as member:
        assert await member.receive_json() == recovered("room-a", True, epoch, 1, 0)
        assert await member.receive_json() == {"joined": "room-a"}


async def test_another_epoch_is_not_recovered_and_nothing_replayed(
    backend: BaseBackend, form: str
) -> None:
    await say("room-a", 1, 2)
    epoch, _ = django_ws.position_sync("room-a")
    offered = since({"room-a": ["old-epoch", 1]})
    async with room_client().connect(f"/{form}/room-a", query_string=offered) as member:
        assert await member.receive_json() == recovered("room-a", False, epoch, 2, 0)
        assert await member.receive_json() == {"joined": "room-a"}
        await say("room-a", 3)
        assert await member.receive_json() == frame("room-a", epoch, 3, {"n": 3})


async def test_a_gap_longer_than_the_history_is_not_recovered(
    backend: BaseBackend, form: str
) -> None:
    epoch, _ = django_ws.position_sync("room-a")
    await say("room-a", *range(1, 8))  # SIZE 5 keeps 3..7
    offered = since({"room-a": [epoch, 1]})
    async with room_client().connect(f"/{form}/room-a", query_string=offered) as member:
        assert await member.receive_json() == recovered("room-a", False, epoch, 7, 0)
        assert await member.receive_json() == {"joined": "room-a"}


async def test_a_gap_the_history_still_holds_is_recovered_whole(
    backend: BaseBackend, form: str
) -> None:
    epoch, _ = django_ws.position_sync("room-a")
    await say("room-a", *range(1, 8))  # SIZE 5 keeps 3..7
    offered = since({"room-a": [epoch, 2]})
    async with room_client().connect(f"/{form}/room-a", query_string=offered) as member:
        assert await member.receive_json() == recovered("room-a", True, epoch, 2, 5)
        for number in range(3, 8):
            assert await member.receive_json() == frame(
                "room-a", epoch, number, {"n": number}
            )
        assert await member.receive_json() == {"joined": "room-a"}


async def test_a_broadcast_racing_the_replay_arrives_once_after_it(
    backend: BaseBackend, form: str
) -> None:
    await say("room-a", 1, 2, 3)
    epoch, _ = django_ws.position_sync("room-a")
    client = room_client()
    scope = client.scope(
        f"/{form}/room-a", query_string=since({"room-a": [epoch, 1]})
    )
    member = WebSocketTestConnection(client.app, scope)
    member.pause_reading()  # the replay's first frame blocks
    await member.open()
    try:
        await member.wait_send_blocked()
        await say("room-a", 4)
        await asyncio.sleep(0)
        member.resume_reading()
        assert await member.receive_json() == recovered("room-a", True, epoch, 1, 2)
        assert await member.receive_json() == frame("room-a", epoch, 2, {"n": 2})
        assert await member.receive_json() == frame("room-a", epoch, 3, {"n": 3})
        assert await member.receive_json() == frame("room-a", epoch, 4, {"n": 4})
        assert await member.receive_json() == {"joined": "room-a"}
        await member.assert_nothing_received(0.05)
    finally:
        await member.close()


async def test_an_offered_position_is_used_by_the_first_join_only(
    backend: BaseBackend, form: str
) -> None:
    await say("room-a", 1, 2)
    epoch, _ = django_ws.position_sync("room-a")
    offered = since({"room-a": [epoch, 1]})
    async with room_client().connect(f"/{form}/room-a", query_string=offered) as member:
        assert await member.receive_json() == recovered("room-a", True, epoch, 1, 1)
        assert await member.receive_json() == frame("room-a", epoch, 2, {"n": 2})
        assert await member.receive_json() == {"joined": "room-a"}
        await member.send_json({"leave": "room-a"})
        assert await member.receive_json() == {"groups": []}
        await member.send_json({"join": "room-a"})
        assert await member.receive_json() == {"groups": ["room-a"]}
        await say("room-a", 3)
        assert await member.receive_json() == frame("room-a", epoch, 3, {"n": 3})


async def test_an_offered_position_does_not_join_by_itself(
    backend: BaseBackend, form: str
) -> None:
    epoch, _ = django_ws.position_sync("room-b")
    offered = since({"room-b": [epoch, 0]})
    async with room_client().connect(f"/{form}/room-a", query_string=offered) as member:
        assert await member.receive_json() == {"joined": "room-a"}
        assert set(backend.groups) == {"room-a"}


@pytest.mark.parametrize(
    "ws_since",
    ["not json", "[1]", json.dumps({"room-a": ["e", -1]}), "x" * 70_000],
    ids=["text", "list", "negative", "huge"],
)
async def test_a_hostile_ws_since_neither_fails_the_handshake_nor_the_join(
    backend: BaseBackend, form: str, ws_since: str
) -> None:
    await say("room-a", 1)
    query = {"ws_since": ws_since}
    async with room_client().connect(f"/{form}/room-a", query_string=query) as member:
        assert await member.receive_json() == {"joined": "room-a"}
        await say("room-a", 2)
        assert (await member.receive_json())["offset"] == 2


async def test_a_group_without_history_is_unchanged(
    backend: BaseBackend, form: str
) -> None:
    async with room_client().connect(
        f"/{form}/lobby", query_string=since({"lobby": ["e", 0]})
    ) as member:
        assert await member.receive_json() == {"joined": "lobby"}
        await django_ws.broadcast("lobby", {"n": 1})
        await django_ws.broadcast("lobby", "raw", raw=True)
        assert await member.receive_text() == '{"n":1}'
        assert await member.receive_text() == "raw"


async def test_broadcasts_from_threads_reach_members_in_offset_order(
    member_of_room_a: WebSocketTestConnection,
) -> None:
    def send_many(start: int) -> None:
        for number in range(start, start + 20):
            django_ws.broadcast_sync("room-a", {"n": number})

    await asyncio.gather(
        asyncio.to_thread(send_many, 0), asyncio.to_thread(send_many, 100)
    )
    received = [await member_of_room_a.receive_json() for _ in range(40)]
    assert [message["offset"] for message in received] == list(range(1, 41))


def test_history_rules_are_validated_at_startup(settings: Any) -> None:
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.MemoryBackend",
        "HISTORY": {"room-*": {"SIZE": 0, "TTL": 600}},
    }
    with pytest.raises(ImproperlyConfigured) as excinfo:
        get_websocket_application()
    assert str(excinfo.value) == (
        "WS_BROADCAST['HISTORY']['room-*']['SIZE'] must be a positive int "
        "(messages kept), got 0."
    )


def test_manage_py_check_reports_bad_history_rules(settings: Any) -> None:
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.MemoryBackend",
        "HISTORY": {"room-*": {"SIZE": 200}},
    }
    errors = [m for m in checks.run_checks(tags=["django_ws"]) if m.id == "django_ws.E001"]
    assert [error.msg for error in errors] == [
        "WS_BROADCAST['HISTORY']['room-*'] must be a dict with exactly the keys 'SIZE' "
        "and 'TTL', e.g. {'SIZE': 200, 'TTL': 600}; got {'SIZE': 200}."
    ]


def test_history_with_redis_is_accepted_without_connecting(settings: Any) -> None:
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens: not connected
        "HISTORY": HISTORY,
    }
    get_websocket_application()
    assert get_backend().history_policy("room-a") == HistoryPolicy(5, 600.0)


class Historyless(MemoryBackend):
    """A backend of a third party that knows nothing of history."""

    recover = BaseBackend.recover


def test_history_with_a_backend_that_keeps_none_fails_at_startup(settings: Any) -> None:
    settings.WS_BROADCAST = {
        "BACKEND": "tests.test_history_groups.Historyless",
        "HISTORY": HISTORY,
    }
    with pytest.raises(ImproperlyConfigured) as excinfo:
        get_websocket_application()
    assert str(excinfo.value) == (
        "WS_BROADCAST['HISTORY'] is set, but Historyless keeps no group history: "
        "remove 'HISTORY' or use 'django_ws.broadcast.MemoryBackend'."
    )


def test_the_pattern_lookup_is_cached_and_dropped_with_the_settings(
    settings: Any,
) -> None:
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.MemoryBackend",
        "HISTORY": HISTORY,
    }
    assert get_backend().history_policy("room-a") == HistoryPolicy(5, 600)
    assert get_backend().history_policy("room-a") == HistoryPolicy(5, 600)
    settings.WS_BROADCAST = {"BACKEND": "django_ws.broadcast.MemoryBackend"}
    assert get_backend().history_policy("room-a") is None


async def test_a_group_without_history_costs_one_cached_lookup_per_broadcast(
    backend: BaseBackend,
) -> None:
    lookups = backend.history.policy.cache_info  # type: ignore[attr-defined]
    before = lookups()
    for number in range(100):
        await django_ws.broadcast("lobby", {"n": number})
    after = lookups()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 99)


async def test_without_history_settings_no_lookup_is_made(settings: Any) -> None:
    settings.WS_BROADCAST = {"BACKEND": "django_ws.broadcast.MemoryBackend"}
    backend = get_backend()
    await django_ws.broadcast("room-a", {"n": 1})
    assert backend.history.policy.cache_info().currsize == 0  # type: ignore[attr-defined]


async def test_a_member_closed_during_its_replay_leaves_nothing_behind(
    backend: BaseBackend, form: str
) -> None:
    await say("room-a", 1, 2, 3)
    epoch, _ = django_ws.position_sync("room-a")
    client = room_client()
    scope = client.scope(f"/{form}/room-a", query_string=since({"room-a": [epoch, 0]}))
    member = WebSocketTestConnection(client.app, scope)
    member.pause_reading()
    await member.open()
    await member.wait_send_blocked()
    closing = asyncio.ensure_future(member.close())
    await asyncio.sleep(0)  # the client is gone...
    member.resume_reading()  # ...when the replay's first frame goes out
    await closing
    assert backend.groups == {}
    await say("room-a", 4)  # nobody left to hold it for
