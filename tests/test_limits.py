"""Limits: message size (1009), send queue of a client that does not read (1008), rate (1008)."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import path

import django_ws.ratelimit
from django_ws import WebSocketHandler, broadcast, ws_route
from django_ws.broadcast import get_backend
from django_ws.decorators.registry import RouteRegistry
from django_ws.handler import open_connections
from django_ws.ratelimit import RateLimiter
from django_ws.testing import WebSocketTestClient, WebSocketTestConnection
from tests.core_support import app_for, client, frames

MiB = 1024 * 1024


def echo(received: list[Any] | None = None, **attributes: Any) -> type[WebSocketHandler]:
    """An echo handler (binary frames echoed as binary) with class ``attributes``."""

    class Echo(WebSocketHandler):
        async def on_message(self, data: Any) -> Any:
            if received is not None:
                received.append(data)
            if isinstance(data, bytes):
                await self.send_bytes(data)
                return None
            return {"echo": data}

    for name, value in attributes.items():
        setattr(Echo, name, value)
    return Echo


class FakeClock:
    """Stands in for ``time.monotonic`` in ``django_ws.ratelimit``."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(django_ws.ratelimit, "time", fake)
    return fake


# Message size ---------------------------------------------------------------------


def test_the_default_message_size_limit_is_one_mebibyte() -> None:
    from django_ws.conf import get_settings

    assert get_settings().max_message_size == MiB


async def test_a_message_at_the_limit_is_handled() -> None:
    async with client(echo()).connect("/ws") as ws:
        await ws.send_bytes(b"x" * MiB)
        assert await ws.receive_bytes() == b"x" * MiB


@pytest.mark.parametrize(
    "send",
    [
        lambda ws: ws.send_bytes(b"x" * (MiB + 1)),
        lambda ws: ws.send_text('"' + "x" * MiB + '"'),
        lambda ws: ws.send_text('"' + "é" * (MiB // 2) + '"'),  # counted in UTF-8 bytes
    ],
    ids=["binary", "text", "multibyte-text"],
)
async def test_a_message_over_the_limit_closes_1009_unhandled(send: Any) -> None:
    received: list[Any] = []
    async with client(echo(received)).connect("/ws") as ws:
        await send(ws)
        assert await ws.receive_close() == 1009
        assert ws.close_reason == "Message too big"
    assert received == []


async def test_messages_after_the_oversized_one_are_not_handled() -> None:
    received: list[Any] = []
    async with client(echo(received)).connect("/ws") as ws:
        await ws.send_bytes(b"x" * (MiB + 1))
        await ws.send_json("after")
        assert await ws.receive_close() == 1009
    assert received == []


async def test_ws_max_message_size_sets_the_limit(settings: Any) -> None:
    settings.WS_MAX_MESSAGE_SIZE = 10
    async with client(echo()).connect("/ws") as ws:
        await ws.send_json("12345678")  # 10 bytes with the quotes
        assert await ws.receive_json() == {"echo": "12345678"}
        await ws.send_json("123456789")
        assert await ws.receive_close() == 1009


async def test_a_route_sets_its_own_message_size_limit() -> None:
    small, default = echo(max_message_size=4), echo()
    ws_client = WebSocketTestClient(app_for(path("small", small), path("ws", default)))
    async with ws_client.connect("/small") as ws:
        await ws.send_bytes(b"12345")
        assert await ws.receive_close() == 1009
    async with ws_client.connect("/ws") as ws:
        await ws.send_bytes(b"12345")
        assert await ws.receive_bytes() == b"12345"


async def test_a_function_route_sets_its_own_message_size_limit() -> None:
    registry = RouteRegistry()

    @ws_route("ws", registry=registry, max_message_size=4)
    async def echo_function(ws: WebSocketHandler, data: Any) -> Any:
        return {"echo": data}

    async with WebSocketTestClient(app_for(*registry.urlpatterns)).connect("/ws") as ws:
        await ws.send_json("12")
        assert await ws.receive_json() == {"echo": "12"}
        await ws.send_json("123")
        assert await ws.receive_close() == 1009


# Send queue ---------------------------------------------------------------------


class Member(WebSocketHandler):
    """Joins ``feed``; records its close."""

    closes: list[tuple[int | None, str]] = []

    async def on_open(self) -> None:
        await self.join("feed")

    async def on_close(self) -> None:
        self.closes.append((self.close_code, self.close_reason))


def test_the_default_send_queue_limit_is_1000_messages() -> None:
    from django_ws.conf import get_settings

    assert get_settings().max_send_queue == 1000


async def test_a_member_that_stops_reading_is_cut_off_and_the_others_keep_receiving(
    settings: Any,
) -> None:
    """A broadcast never waits for a slow member: its queue fills, it gets 1008."""
    settings.WS_MAX_SEND_QUEUE = 5
    Member.closes = []
    members = client(Member)
    async with members.connect("/ws") as slow, members.connect("/ws") as reader:
        slow.pause_reading()  # from now on its sends block: a client that stops reading
        await slow.wait_idle(), await reader.wait_idle()  # both have joined "feed"
        assert get_backend().member_count() == 2
        for number in range(20):
            await broadcast("feed", {"n": number})
        await slow.wait_closed()
        assert [await reader.receive_json() for _ in range(20)] == [{"n": n} for n in range(20)]

    assert Member.closes[0] == (1008, "Client too slow: send queue full")
    assert slow.events[-1] == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "Client too slow: send queue full",
    }
    assert frames(slow) == []  # nothing was delivered while blocked
    assert get_backend().member_count() == 0


async def blocked_queue_lengths(
    **attributes: Any,
) -> tuple[list[int], WebSocketTestConnection]:
    """Push 10,000 unawaited sends at a client that reads nothing; record queue lengths."""
    lengths: list[int] = []

    class Pusher(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            for number in range(10_000):
                self.send({"n": number})  # fire and forget
                lengths.append(self.send_queue_length)

    for name, value in attributes.items():
        setattr(Pusher, name, value)
    async with client(Pusher).connect("/ws") as ws:
        ws.pause_reading()
        await ws.send_json("push")
        await ws.wait_closed()
    return lengths, ws


async def test_the_queue_of_a_blocked_client_never_exceeds_ws_max_send_queue(
    settings: Any,
) -> None:
    settings.WS_MAX_SEND_QUEUE = 50
    lengths, ws = await blocked_queue_lengths()
    assert max(lengths) == 50
    assert lengths[-1] == 0  # dropped at the cut-off
    assert ws.events[-1] == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "Client too slow: send queue full",
    }
    assert open_connections == set()


async def test_a_route_sets_its_own_send_queue_limit() -> None:
    lengths, ws = await blocked_queue_lengths(max_send_queue=3)
    assert max(lengths) == 3
    assert ws.events[-1] == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "Client too slow: send queue full",
    }


# Message rate ---------------------------------------------------------------------


def test_the_message_rate_is_unlimited_by_default() -> None:
    from django_ws.conf import get_settings

    assert get_settings().max_messages_per_second is None


async def test_over_the_message_rate_closes_1008(settings: Any, clock: FakeClock) -> None:
    settings.WS_MAX_MESSAGES_PER_SECOND = 2
    received: list[Any] = []
    async with client(echo(received)).connect("/ws") as ws:
        for number in range(5):
            await ws.send_json(number)
        assert await ws.receive_json() == {"echo": 0}
        assert await ws.receive_json() == {"echo": 1}
        assert await ws.receive_close() == 1008
        assert ws.close_reason == "Message rate limit exceeded"
    assert received == [0, 1]


async def test_under_the_message_rate_nothing_happens(settings: Any, clock: FakeClock) -> None:
    settings.WS_MAX_MESSAGES_PER_SECOND = 2
    async with client(echo()).connect("/ws") as ws:
        for number in range(6):
            await ws.send_json(number)
            assert await ws.receive_json() == {"echo": number}
            clock.now += 0.5


async def test_a_route_sets_its_own_message_rate(clock: FakeClock) -> None:
    async with client(echo(max_messages_per_second=1)).connect("/ws") as ws:
        await ws.send_json("first")
        await ws.send_json("second")
        assert await ws.receive_json() == {"echo": "first"}
        assert await ws.receive_close() == 1008


def test_the_rate_limiter_allows_bursts_up_to_the_rate(clock: FakeClock) -> None:
    limiter = RateLimiter(3)
    assert [limiter.allow() for _ in range(4)] == [True, True, True, False]
    clock.now += 1 / 3
    assert [limiter.allow(), limiter.allow()] == [True, False]
    clock.now += 100  # the bucket refills to the rate, no further
    assert [limiter.allow() for _ in range(4)] == [True, True, True, False]


def test_a_rate_below_one_still_admits_the_first_message(clock: FakeClock) -> None:
    limiter = RateLimiter(0.5)
    assert [limiter.allow(), limiter.allow()] == [True, False]
    clock.now += 2
    assert [limiter.allow(), limiter.allow()] == [True, False]
