"""Groups with history on ``RedisBackend``, in-process against a real Redis.

The memory backend's history behaviours run here again over Redis (imported from
``test_history_groups``, with this module's ``backend``); then what is Redis's
own: one script call per broadcast, the keys it keeps, and the repair of a gap
that a process sees in the channel.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis

import django_ws
from django_ws.broadcast import get_backend
from django_ws.broadcast.redis import RedisBackend
from django_ws.broadcast.redis_history import PUBLISH_SCRIPT, keys
from django_ws.exceptions import BroadcastError
from django_ws.testing import WebSocketTestConnection
from tests.broadcast_support import RecordedEvents, connections, joined, room_client
from tests.live_server import PrivateRedis
from tests.test_broadcast_redis import (  # noqa: F401 - a fixture
    command_calls,
    delta,
    silent_redis,
)
from tests.test_history_groups import (  # noqa: F401 - run again over Redis
    frame,
    member_of_room_a,
    recovered,
    say,
    since,
    test_a_broadcast_racing_the_replay_arrives_once_after_it,
    test_a_gap_longer_than_the_history_is_not_recovered,
    test_a_group_without_history_is_unchanged,
    test_a_hostile_ws_since_neither_fails_the_handshake_nor_the_join,
    test_a_member_closed_during_its_replay_leaves_nothing_behind,
    test_an_offered_position_does_not_join_by_itself,
    test_broadcasts_from_threads_reach_members_in_offset_order,
    test_a_gap_the_history_still_holds_is_recovered_whole,
    test_a_history_group_wraps_each_message_with_its_position,
    test_a_member_at_the_current_position_recovers_nothing_missed,
    test_a_reconnecting_member_gets_what_it_missed_then_live,
    test_an_offered_position_is_used_by_the_first_join_only,
    test_another_epoch_is_not_recovered_and_nothing_replayed,
    test_position_is_zero_before_any_message,
    test_raw_to_a_history_group_is_a_type_error,
)

HISTORY = {"room-*": {"SIZE": 5, "TTL": 600}}


def use(
    settings: Any,
    location: str,
    history: dict[str, Any] = HISTORY,
    timeout: float = 1,
) -> RedisBackend:
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": location,
        "OPTIONS": {
            "PREFIX": f"test-{uuid.uuid4().hex[:8]}",
            "TIMEOUT": timeout,
            "PRESENCE_TTL": 600,
            "RECONNECT_MAX": 0.2,
        },
        "HISTORY": history,
    }
    backend = get_backend()
    assert isinstance(backend, RedisBackend)
    return backend


@pytest.fixture
async def backend(settings: Any, redis_url: str) -> AsyncIterator[RedisBackend]:
    backend = use(settings, redis_url)
    yield backend
    await backend.stop()
    assert backend.member_count() == 0


@pytest.fixture
def other(backend: RedisBackend) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(backend.location) as other:
        yield other


def publish_unseen(
    client: redis.Redis, backend: RedisBackend, group: str, *numbers: int
) -> None:
    """Append to ``group``'s history as a broadcast would, but announce it nowhere.

    The processes subscribed to the group see the next message skip offsets, as
    after a lost pub/sub message.
    """
    for number in numbers:
        client.eval(
            PUBLISH_SCRIPT,
            3,
            *keys(backend.prefix, group),
            "unused-epoch",
            600_000,
            5,
            b"nobody-listens",
            "elsewhere",
            "",
            f'{{"n":{number}}}',
        )


@pytest.fixture
async def member(backend: RedisBackend) -> AsyncIterator[WebSocketTestConnection]:
    async with room_client().connect("/class/room-a") as member:
        yield await joined(member)


#: What one broadcast to a group with history costs Redis: one EVALSHA from the
#: client; the rest are the script's own commands, run inside Redis.
ONE_BROADCAST = {
    "cmdstat_evalsha": 1,
    "cmdstat_get": 1,
    "cmdstat_incr": 1,
    "cmdstat_time": 1,
    "cmdstat_xadd": 1,
    "cmdstat_pexpire": 3,
    "cmdstat_publish": 1,
}


async def test_one_script_call_per_broadcast(
    settings: Any, private_redis: PrivateRedis
) -> None:
    backend = use(settings, private_redis.url)
    stats = redis.Redis.from_url(private_redis.url)
    try:
        async with room_client().connect("/class/room-a") as member:
            await joined(member)
            epoch, _ = await django_ws.position("room-a")
            before = command_calls(stats)
            await django_ws.broadcast("room-a", {"n": 1})  # loads the script
            assert delta(before, command_calls(stats)) == {
                **ONE_BROADCAST,
                "cmdstat_eval": 1,
            }
            before = command_calls(stats)
            await django_ws.broadcast("room-a", {"n": 2})
            assert delta(before, command_calls(stats)) == ONE_BROADCAST
            django_ws.position_sync("room-a")  # the sync client connects
            before = command_calls(stats)
            await asyncio.to_thread(django_ws.broadcast_sync, "room-a", {"n": 3})
            assert delta(before, command_calls(stats)) == ONE_BROADCAST
            for number in (1, 2, 3):
                assert await member.receive_json() == frame(
                    "room-a", epoch, number, {"n": number}
                )
    finally:
        stats.close()
        await backend.stop()


async def test_a_flushed_script_cache_falls_back_to_eval(
    member: WebSocketTestConnection, other: redis.Redis
) -> None:
    epoch, _ = await django_ws.position("room-a")
    other.script_flush()
    await say("room-a", 1)
    django_ws.broadcast_sync("room-a", {"n": 2})
    assert await member.receive_json() == frame("room-a", epoch, 1, {"n": 1})
    assert await member.receive_json() == frame("room-a", epoch, 2, {"n": 2})


async def test_the_keys_share_a_hash_tag_and_expire_with_the_ttl(
    backend: RedisBackend, other: redis.Redis
) -> None:
    await say("room-a", *range(1, 8))
    epoch_key, offset_key, stream_key = keys(backend.prefix, "room-a")
    assert epoch_key.startswith(f"{{{backend.prefix}:h:room-a}}:")
    assert backend.channel("room-a") == f"{{{backend.prefix}:h:room-a}}:c".encode()
    assert other.get(offset_key) == b"7"
    assert other.xlen(stream_key) == 5  # SIZE, exactly
    for key in (epoch_key, offset_key, stream_key):
        assert 599_000 < other.pttl(key) <= 600_000


async def test_deleted_keys_start_a_new_epoch_that_is_not_recovered(
    backend: RedisBackend, other: redis.Redis
) -> None:
    await say("room-a", 1, 2)
    old, _ = django_ws.position_sync("room-a")
    other.delete(*keys(backend.prefix, "room-a"))
    epoch, offset = django_ws.position_sync("room-a")
    assert epoch != old and offset == 0
    offered = since({"room-a": [old, 2]})
    async with room_client().connect("/class/room-a", query_string=offered) as member:
        assert await member.receive_json() == recovered("room-a", False, epoch, 0, 0)
        assert await member.receive_json() == {"joined": "room-a"}
        await say("room-a", 3)
        assert await member.receive_json() == frame("room-a", epoch, 1, {"n": 3})


async def test_messages_older_than_the_ttl_are_not_recovered(
    settings: Any, redis_url: str
) -> None:
    backend = use(settings, redis_url, {"room-*": {"SIZE": 5, "TTL": 0.5}})
    try:
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
    finally:
        await backend.stop()


async def test_a_skipped_offset_is_read_from_the_stream_before_the_next(
    backend: RedisBackend, member: WebSocketTestConnection, other: redis.Redis
) -> None:
    backend.events = events = RecordedEvents()
    epoch, _ = await django_ws.position("room-a")
    await say("room-a", 1)
    assert await member.receive_json() == frame("room-a", epoch, 1, {"n": 1})
    publish_unseen(other, backend, "room-a", 2, 3)
    await say("room-a", 4)
    for number in (2, 3, 4):
        assert await member.receive_json() == frame(
            "room-a", epoch, number, {"n": number}
        )
    await member.assert_nothing_received(0.1)
    assert events.seen == ["gap:repaired"]


async def test_a_gap_the_stream_lost_sends_recovered_false_then_live(
    backend: RedisBackend, member: WebSocketTestConnection, other: redis.Redis
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


async def test_after_a_pubsub_reconnect_what_was_missed_is_delivered(
    settings: Any, private_redis: PrivateRedis
) -> None:
    backend = use(settings, private_redis.url)
    other = redis.Redis.from_url(private_redis.url)
    try:
        async with room_client().connect("/class/room-a") as member:
            await joined(member)
            epoch, _ = await django_ws.position("room-a")
            await say("room-a", 1)
            assert await member.receive_json() == frame("room-a", epoch, 1, {"n": 1})
            publish_unseen(other, backend, "room-a", 2, 3)
            assert other.client_kill_filter(_type="pubsub") == 1
            for number in (2, 3):
                assert await member.receive_json() == frame(
                    "room-a", epoch, number, {"n": number}
                )
            deadline = time.monotonic() + 5
            while other.pubsub_numsub(backend.channel("room-a"))[0][1] == 0:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            await say("room-a", 4)
            assert await member.receive_json() == frame("room-a", epoch, 4, {"n": 4})
            await member.assert_nothing_received(0.1)
    finally:
        other.close()
        await backend.stop()


async def test_redis_down_raises_broadcast_error_within_the_timeout(
    settings: Any, private_redis: PrivateRedis
) -> None:
    backend = use(settings, private_redis.url)
    try:
        private_redis.stop()
        started = time.monotonic()
        with pytest.raises(BroadcastError):
            await django_ws.broadcast("room-a", {"n": 1})
        with pytest.raises(BroadcastError):
            django_ws.broadcast_sync("room-a", {"n": 1})
        with pytest.raises(BroadcastError):
            django_ws.position_sync("room-a")
        assert time.monotonic() - started < 4
    finally:
        await backend.stop()



async def test_after_redis_restarts_empty_members_start_over_at_the_new_epoch(
    settings: Any, private_redis: PrivateRedis
) -> None:
    backend = use(settings, private_redis.url)
    try:
        async with room_client().connect("/class/room-a") as member:
            await joined(member)
            old, _ = await django_ws.position("room-a")
            await say("room-a", 1)
            assert await member.receive_json() == frame("room-a", old, 1, {"n": 1})
            await asyncio.to_thread(private_redis.stop)
            await asyncio.to_thread(private_redis.start)
            deadline = time.monotonic() + 10
            while True:  # the publisher retries until Redis answers
                try:
                    await say("room-a", 2)
                    break
                except BroadcastError:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            await say("room-a", 3)
            start = await member.receive_json()
            epoch = start["epoch"]
            assert epoch != old
            assert start == recovered("room-a", False, epoch, 0, 0)
            assert await member.receive_json() == frame("room-a", epoch, 1, {"n": 2})
            assert await member.receive_json() == frame("room-a", epoch, 2, {"n": 3})
            await member.assert_nothing_received(0.1)
    finally:
        await backend.stop()


async def test_joining_while_redis_is_down_neither_fails_nor_waits(
    settings: Any, private_redis: PrivateRedis
) -> None:
    backend = use(settings, private_redis.url)
    try:
        epoch, _ = await django_ws.position("room-a")
        await say("room-a", 1)
        await asyncio.to_thread(private_redis.stop)
        offered = since({"room-a": [epoch, 0]})
        client = room_client()
        async with (
            client.connect("/class/room-a", query_string=offered) as recovering,
            client.connect("/class/room-a") as plain,
        ):
            assert await recovering.receive_json() == recovered(
                "room-a", False, epoch, 0, 0
            )
            assert await recovering.receive_json() == {"joined": "room-a"}
            assert await plain.receive_json() == {"joined": "room-a"}
            await asyncio.to_thread(private_redis.start)
            # Back, Redis is empty: both learn the new epoch, unrecovered.
            for member in (recovering, plain):
                start = await member.receive_json(timeout=10)
                assert start == recovered("room-a", False, start["epoch"], 0, 0)
            await say("room-a", 2)
            for member in (recovering, plain):
                assert await member.receive_json() == frame(
                    "room-a", start["epoch"], 1, {"n": 2}
                )
    finally:
        await backend.stop()


async def test_a_late_channel_copy_of_a_replayed_message_is_not_sent_twice(
    backend: RedisBackend, other: redis.Redis
) -> None:
    client = room_client()
    async with client.connect("/class/room-a") as first:
        await joined(first)
        epoch, _ = await django_ws.position("room-a")
        await say("room-a", 1)
        assert await first.receive_json() == frame("room-a", epoch, 1, {"n": 1})
        publish_unseen(other, backend, "room-a", 2, 3)  # their copies come late
        offered = since({"room-a": [epoch, 1]})
        async with client.connect("/class/room-a", query_string=offered) as second:
            assert await second.receive_json() == recovered("room-a", True, epoch, 1, 2)
            assert await second.receive_json() == frame("room-a", epoch, 2, {"n": 2})
            assert await second.receive_json() == frame("room-a", epoch, 3, {"n": 3})
            assert await second.receive_json() == {"joined": "room-a"}
            channel = backend.channel("room-a")
            for number in (2, 3):  # what PUBLISH_SCRIPT sent for them
                payload = f'helsewhere\n\n{epoch}\n{number}\n{{"n":{number}}}'
                assert other.publish(channel, payload) == 1
            await say("room-a", 4)
            for number in (2, 3, 4):
                assert await first.receive_json() == frame(
                    "room-a", epoch, number, {"n": number}
                )
            assert await second.receive_json() == frame("room-a", epoch, 4, {"n": 4})
            await first.assert_nothing_received(0.1)
            await second.assert_nothing_received(0.1)


async def test_exclude_works_in_a_group_with_history(backend: RedisBackend) -> None:
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


async def test_a_hung_redis_never_hangs_a_history_broadcast_nor_a_join(
    settings: Any, silent_redis: str
) -> None:
    backend = use(settings, silent_redis, timeout=0.3)
    try:
        offered = since({"room-a": ["some-epoch", 3]})
        started = time.monotonic()
        async with room_client().connect("/class/room-a", query_string=offered) as m:
            assert await m.receive_json() == recovered(
                "room-a", False, "some-epoch", 3, 0
            )
            assert await m.receive_json() == {"joined": "room-a"}
            message = "did not answer within 0.3 s"
            with pytest.raises(BroadcastError, match=message):
                await say("room-a", 1)
            with pytest.raises(BroadcastError, match=message):
                await asyncio.to_thread(django_ws.broadcast_sync, "room-a", {"n": 2})
            with pytest.raises(BroadcastError, match=message):
                await django_ws.position("room-a")
            await m.assert_nothing_received(0.1)
        assert time.monotonic() - started < 5
    finally:
        await backend.stop()


async def test_an_epoch_change_during_a_replay_loses_no_message_of_the_new_epoch(
    backend: RedisBackend, other: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The history is lost (a new epoch starts) while a member is being replayed
    # the old one: the new epoch's first messages arrive while its deliveries are
    # held, and their offsets (1, 2) are below its replay's last offset (4).
    client = room_client()
    async with client.connect("/class/room-a") as watcher:
        await joined(watcher)
        epoch, _ = await django_ws.position("room-a")
        await say("room-a", 1, 2, 3, 4)
        for number in (1, 2, 3, 4):
            assert await watcher.receive_json() == frame(
                "room-a", epoch, number, {"n": number}
            )
        read, release = asyncio.Event(), asyncio.Event()
        recover = backend.recover

        async def recover_then_wait(*args: Any) -> Any:
            recovery = await recover(*args)
            read.set()
            await release.wait()  # the replay is sent only after the epoch change
            return recovery

        monkeypatch.setattr(backend, "recover", recover_then_wait)
        offered = since({"room-a": [epoch, 1]})
        async with client.connect("/class/room-a", query_string=offered) as member:
            await asyncio.wait_for(read.wait(), 5)
            other.delete(*keys(backend.prefix, "room-a"))
            await say("room-a", 5, 6)
            new, _ = await django_ws.position("room-a")
            assert new != epoch
            for offset, number in ((1, 5), (2, 6)):  # delivered in this process
                assert await watcher.receive_json() == frame(
                    "room-a", new, offset, {"n": number}
                )
            release.set()
            assert await member.receive_json() == recovered("room-a", True, epoch, 1, 3)
            for number in (2, 3, 4):
                assert await member.receive_json() == frame(
                    "room-a", epoch, number, {"n": number}
                )
            assert await member.receive_json() == frame("room-a", new, 1, {"n": 5})
            assert await member.receive_json() == frame("room-a", new, 2, {"n": 6})
            assert await member.receive_json() == {"joined": "room-a"}
            await say("room-a", 7)
            assert await member.receive_json() == frame("room-a", new, 3, {"n": 7})
            assert await watcher.receive_json() == frame("room-a", new, 3, {"n": 7})
            await member.assert_nothing_received(0.1)
            await watcher.assert_nothing_received(0.1)


async def test_after_a_reconnect_every_group_is_repaired_from_one_batch_of_reads(
    settings: Any, private_redis: PrivateRedis
) -> None:
    backend = use(settings, private_redis.url)
    other = redis.Redis.from_url(private_redis.url)
    groups = ("room-a", "room-b", "room-c")
    try:
        async with room_client().connect("/class/room-a") as member:
            await joined(member)
            for group in groups[1:]:
                await member.send_json({"join": group})
                await member.receive_json()
            epochs = {}
            for group in groups:
                epochs[group], _ = await django_ws.position(group)
                await say(group, 1)
                assert await member.receive_json() == frame(
                    group, epochs[group], 1, {"n": 1}
                )
            publish_unseen(other, backend, "room-a", 2, 3)
            publish_unseen(other, backend, "room-b", 2)
            other.delete(*keys(backend.prefix, "room-c"))  # a new epoch, 2 messages
            publish_unseen(other, backend, "room-c", 2, 3)
            before = command_calls(other)
            assert other.client_kill_filter(_type="pubsub") == 1
            received: dict[str, list[Any]] = {group: [] for group in groups}
            for _ in range(6):
                message = await member.receive_json()
                received[message["group"]].append(message)
            assert received["room-a"] == [
                frame("room-a", epochs["room-a"], n, {"n": n}) for n in (2, 3)
            ]
            assert received["room-b"] == [
                frame("room-b", epochs["room-b"], 2, {"n": 2})
            ]
            assert received["room-c"] == [
                recovered("room-c", False, "unused-epoch", 0, 0),
                frame("room-c", "unused-epoch", 1, {"n": 2}),
                frame("room-c", "unused-epoch", 2, {"n": 3}),
            ]
            # One read per group, then one more for the group whose epoch changed.
            assert delta(before, command_calls(other)).get("cmdstat_eval") == 4
            await member.assert_nothing_received(0.1)
    finally:
        other.close()
        await backend.stop()


async def test_a_history_that_went_back_starts_a_new_epoch_instead_of_reusing_offsets(
    settings: Any, private_redis: PrivateRedis
) -> None:
    # A failover to a replica that missed the last writes: the group is at the
    # same epoch but behind what members saw. Reusing offsets 2 and 3 for new
    # messages would get them dropped as duplicates; a new epoch is announced.
    backend = use(settings, private_redis.url)
    other = redis.Redis.from_url(private_redis.url)
    try:
        async with room_client().connect("/class/room-a") as member:
            await joined(member)
            old, _ = await django_ws.position("room-a")
            await say("room-a", 1, 2, 3)
            for number in (1, 2, 3):
                assert await member.receive_json() == frame(
                    "room-a", old, number, {"n": number}
                )
            epoch_key, offset_key, stream_key = keys(backend.prefix, "room-a")
            other.set(offset_key, 1, keepttl=True)  # what the replica had
            other.xdel(stream_key, "2-0", "3-0")
            assert other.client_kill_filter(_type="pubsub") == 1
            start = await member.receive_json()
            new = start["epoch"]
            assert new != old
            assert start == recovered("room-a", False, new, 0, 0)
            await say("room-a", 4)
            assert await member.receive_json() == frame("room-a", new, 1, {"n": 4})
            await member.assert_nothing_received(0.1)
    finally:
        other.close()
        await backend.stop()
