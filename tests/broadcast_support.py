"""A chat room in both handler forms, and the group behaviours every backend must have.

``room_command`` is the room's whole protocol; ``Room`` (a subclass, at
``/class/<room>``) and the ``ws_route`` functions (at ``/function/<room>``) both run
it, so each behaviour is checked on both forms through the suite's ``form`` fixture.
``GroupBehaviour`` holds the tests; each backend's test module subclasses it with a
``backend`` fixture of its own.
"""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.urls import path

import django_ws
from django_ws import WebSocketHandler, get_websocket_application, ws_route
from django_ws.broadcast import BaseBackend, Presence
from django_ws.broadcast.events import BackendEvents, GapOutcome
from django_ws.decorators.registry import RouteRegistry
from django_ws.middleware import AuthMiddleware
from django_ws.testing import WebSocketTestClient, WebSocketTestConnection

class RecordedEvents(BackendEvents):
    """A backend's events, kept in order (``backend.events = RecordedEvents()``)."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def reconnecting(self) -> None:
        self.seen.append("reconnecting")

    def failed(self, operation: str) -> None:
        self.seen.append(f"failed:{operation}")

    def gap(self, outcome: GapOutcome) -> None:
        self.seen.append(f"gap:{outcome}")


#: The open connections, by the ``?name=`` they were opened with.
connections: dict[str, WebSocketHandler] = {}


async def room_open(ws: WebSocketHandler, room: str) -> None:
    connections[ws.request.GET.get("name", "")] = ws
    await ws.join(room)
    await ws.send({"joined": room})


async def room_command(ws: WebSocketHandler, data: dict[str, Any], room: str) -> None:
    """Run one command of the room's protocol."""
    if "say" in data:
        exclude = ws if data.get("exclude_me") else None
        try:
            await django_ws.broadcast(room, {"text": data["say"]}, exclude=exclude)
        except django_ws.BroadcastError:
            await ws.send({"error": "broadcast failed"})
    elif "join" in data:
        await ws.join(data["join"])
        await ws.send({"groups": sorted(ws.groups)})
    elif "leave" in data:
        await ws.leave(data["leave"])
        await ws.send({"groups": sorted(ws.groups)})
    elif "presence" in data:
        found = await django_ws.presence(data["presence"])
        await ws.send({"count": found.count, "users": found.users})
    elif "close" in data:
        await ws.close(4000, "bye")
    elif "crash" in data:
        raise RuntimeError("boom")


class Room(WebSocketHandler):
    """The room as a subclass."""

    middleware = (AuthMiddleware,)
    max_send_queue = 2

    async def on_open(self) -> None:
        await room_open(self, self.kwargs["room"])

    async def on_message(self, data: Any) -> None:
        await room_command(self, data, self.kwargs["room"])


registry = RouteRegistry()
room_route = ws_route(
    "function/<str:room>", registry=registry, middleware=[AuthMiddleware], max_send_queue=2
)


@room_route.on_open
async def dsl_open(ws: WebSocketHandler, room: str) -> None:
    await room_open(ws, room)


@room_route.on_message
async def dsl_message(ws: WebSocketHandler, data: Any, room: str) -> None:
    await room_command(ws, data, room)


urlconf = ModuleType("tests.broadcast_support.urlconf")
urlconf.urlpatterns = [path("class/<str:room>", Room)]  # type: ignore[attr-defined]


def application() -> django_ws.WebSocketApplication:
    """Return an application serving the room in both forms (and nothing else)."""
    return get_websocket_application(urlconf=urlconf, registry=registry)


class Price(Decimal):
    """A value that counts how many times it is encoded."""

    encodings = 0

    def __str__(self) -> str:
        type(self).encodings += 1
        return super().__str__()


async def create_user(username: str) -> Any:
    return await sync_to_async(get_user_model().objects.create_user)(username)


def room_client() -> WebSocketTestClient:
    """Return a test client for the room (on the current backend)."""
    connections.clear()
    return WebSocketTestClient(application())


async def joined(connection: WebSocketTestConnection) -> WebSocketTestConnection:
    """Consume the ``{"joined": ...}`` greeting and return ``connection``."""
    greeting = await connection.receive_json()
    assert "joined" in greeting, greeting
    return connection


async def assert_nothing_else_arrives(
    group: str, *members: WebSocketTestConnection
) -> None:
    """Broadcast a marker to ``group``: it must be each member's next message.

    Broadcasts to a group arrive in order, so anything a member was sent before the
    marker would arrive first. That waits on the backend's delivery (which, for
    Redis, crosses the network) rather than on a clock.
    """
    await django_ws.broadcast(group, "marker")
    for member in members:
        assert await member.receive_json() == "marker"


class GroupBehaviour:
    """What every backend does inside one process (subclass it with ``backend``)."""

    @pytest.fixture
    def client(self, backend: BaseBackend) -> WebSocketTestClient:
        """A test client for the room, on the test's ``backend``."""
        return room_client()

    async def test_join_and_leave_change_groups(
        self, backend: BaseBackend, client: WebSocketTestClient, form: str
    ) -> None:
        async with client.connect(f"/{form}/lobby") as ws:
            assert await ws.receive_json() == {"joined": "lobby"}
            await ws.send_json({"join": "news"})
            assert await ws.receive_json() == {"groups": ["lobby", "news"]}
            await ws.send_json({"leave": "lobby"})
            assert await ws.receive_json() == {"groups": ["news"]}
            assert sorted(backend.groups) == ["news"]

    async def test_broadcast_reaches_every_member_once(
        self, backend: BaseBackend, client: WebSocketTestClient, form: str
    ) -> None:
        async with (
            client.connect(f"/{form}/lobby") as a,
            client.connect(f"/{form}/lobby") as b,
            client.connect(f"/{form}/elsewhere") as c,
        ):
            await joined(a), await joined(b), await joined(c)
            await a.send_json({"say": "hi"})
            assert await a.receive_json() == {"text": "hi"}
            assert await b.receive_json() == {"text": "hi"}
            await assert_nothing_else_arrives("lobby", a, b)
            await assert_nothing_else_arrives("elsewhere", c)

    async def test_broadcasts_arrive_in_order(
        self, backend: BaseBackend, client: WebSocketTestClient, form: str
    ) -> None:
        async with (
            client.connect(f"/{form}/lobby") as a,
            client.connect(f"/{form}/lobby") as b,
        ):
            await joined(a), await joined(b)
            for number in range(20):
                await django_ws.broadcast("lobby", number)
            assert [await b.receive_json() for _ in range(20)] == list(range(20))
            assert [await a.receive_json() for _ in range(20)] == list(range(20))

    async def test_exclude_one_connection(
        self, backend: BaseBackend, client: WebSocketTestClient, form: str
    ) -> None:
        async with (
            client.connect(f"/{form}/lobby") as a,
            client.connect(f"/{form}/lobby") as b,
        ):
            await joined(a), await joined(b)
            await a.send_json({"say": "not to me", "exclude_me": True})
            assert await b.receive_json() == {"text": "not to me"}
            await assert_nothing_else_arrives("lobby", a)

    async def test_exclude_several_connections(
        self, backend: BaseBackend, client: WebSocketTestClient, form: str
    ) -> None:
        url = f"/{form}/lobby"
        async with (
            client.connect(url, query_string={"name": "a"}) as a,
            client.connect(url, query_string={"name": "b"}) as b,
            client.connect(url, query_string={"name": "c"}) as c,
        ):
            await joined(a), await joined(b), await joined(c)
            await django_ws.broadcast(
                "lobby", "for c", exclude=[connections["a"], connections["b"]]
            )
            assert await c.receive_json() == "for c"
            await assert_nothing_else_arrives("lobby", a, b)

    async def test_raw_text_and_bytes(
        self, backend: BaseBackend, client: WebSocketTestClient, form: str
    ) -> None:
        async with client.connect(f"/{form}/lobby") as ws:
            await joined(ws)
            await django_ws.broadcast("lobby", "<b>not JSON</b>", raw=True)
            await django_ws.broadcast("lobby", b"\x00\xffbinary\n", raw=True)
            assert await ws.receive_text() == "<b>not JSON</b>"
            assert await ws.receive_bytes() == b"\x00\xffbinary\n"

    async def test_raw_takes_only_str_or_bytes(self, backend: BaseBackend) -> None:
        with pytest.raises(
            TypeError, match="raw broadcast takes str or bytes, not dict"
        ):
            await django_ws.broadcast("lobby", {"a": 1}, raw=True)

    async def test_group_name_must_be_a_non_empty_str(
        self, backend: BaseBackend
    ) -> None:
        with pytest.raises(TypeError, match="A group name is a non-empty str, got ''"):
            await django_ws.broadcast("", "x")
        with pytest.raises(TypeError, match="A group name is a non-empty str, got 7"):
            await django_ws.presence(7)  # type: ignore[arg-type]

    async def test_broadcast_to_an_empty_group_is_a_no_op(
        self, backend: BaseBackend, client: WebSocketTestClient, form: str
    ) -> None:
        async with client.connect(f"/{form}/lobby") as ws:
            await joined(ws)
            await django_ws.broadcast("nobody-here", {"text": "lost"})
            django_ws.broadcast_sync("nobody-here", {"text": "lost"})
            await assert_nothing_else_arrives("lobby", ws)
            assert sorted(backend.groups) == ["lobby"]

    async def test_data_is_encoded_once_per_broadcast(
        self, backend: BaseBackend, client: WebSocketTestClient, form: str
    ) -> None:
        url = f"/{form}/lobby"
        async with (
            client.connect(url) as a,
            client.connect(url) as b,
            client.connect(url) as c,
        ):
            await joined(a), await joined(b), await joined(c)
            Price.encodings = 0
            await django_ws.broadcast("lobby", {"price": Price("9.99")})
            for member in (a, b, c):
                assert await member.receive_json() == {"price": "9.99"}
            assert Price.encodings == 1

    @pytest.mark.parametrize(
        "how, code",
        [("client closes", 1000), ("server closes", 4000), ("handler crashes", 1011)],
    )
    async def test_memberships_end_when_the_socket_closes(
        self,
        backend: BaseBackend,
        client: WebSocketTestClient,
        form: str,
        how: str,
        code: int,
    ) -> None:
        async with (
            client.connect(f"/{form}/lobby") as stays,
            client.connect(f"/{form}/lobby") as goes,
        ):
            await joined(stays), await joined(goes)
            await goes.send_json({"join": "news"})
            assert await goes.receive_json() == {"groups": ["lobby", "news"]}
            if how == "client closes":
                await goes.close(1000)
            else:
                await goes.send_json(
                    {"close": 1} if how == "server closes" else {"crash": 1}
                )
                assert await goes.receive_close() == code
                await goes.wait_closed()
            assert {
                group: len(members) for group, members in backend.groups.items()
            } == {"lobby": 1}
            assert await django_ws.presence("lobby") == Presence(count=1, users=[])
            assert await django_ws.presence("news") == Presence(count=0, users=[])

    @pytest.mark.django_db(transaction=True)
    async def test_presence_counts_connections_and_names_users(
        self, backend: BaseBackend, form: str
    ) -> None:
        alice, bob = await create_user("alice"), await create_user("bob")
        as_alice, as_bob, anonymous = (
            WebSocketTestClient(application()) for _ in "abc"
        )
        await as_alice.force_login(alice)
        await as_bob.force_login(bob)
        url = f"/{form}/lobby"
        async with (
            as_alice.connect(url) as a1,
            as_alice.connect(url) as a2,
            as_bob.connect(url) as b,
            anonymous.connect(url) as anon,
        ):
            for member in (a1, a2, b, anon):
                await joined(member)
            assert await django_ws.presence("lobby") == Presence(
                count=4, users=sorted([alice.pk, bob.pk])
            )
            await anon.send_json({"presence": "lobby"})
            assert await anon.receive_json() == {
                "count": 4,
                "users": sorted([alice.pk, bob.pk]),
            }
            await b.close()
            assert await django_ws.presence("lobby") == Presence(
                count=3, users=[alice.pk]
            )

    async def test_broadcast_sync_from_a_thread(
        self, backend: BaseBackend, client: WebSocketTestClient, form: str
    ) -> None:
        async with (
            client.connect(f"/{form}/lobby") as a,
            client.connect(f"/{form}/lobby") as b,
        ):
            await joined(a), await joined(b)
            thread = threading.Thread(
                target=django_ws.broadcast_sync, args=("lobby", {"from": "thread"})
            )
            thread.start()
            await asyncio.to_thread(thread.join, 3)
            await sync_to_async(django_ws.broadcast_sync)("lobby", b"\x01", raw=True)
            for member in (a, b):
                assert await member.receive_json() == {"from": "thread"}
                assert await member.receive_bytes() == b"\x01"

    async def test_a_member_that_does_not_read_is_cut_off_alone(
        self, backend: BaseBackend, client: WebSocketTestClient, form: str
    ) -> None:
        # Room.max_send_queue is 2: the third message that cannot be sent closes it.
        url = f"/{form}/lobby"
        async with client.connect(url) as stalled, client.connect(url) as reader:
            await joined(stalled), await joined(reader)
            stalled.pause_reading()
            for number in range(5):
                await django_ws.broadcast("lobby", number)
            assert [await reader.receive_json() for _ in range(5)] == [0, 1, 2, 3, 4]
            assert {
                group: len(members) for group, members in backend.groups.items()
            } == {"lobby": 1}
            await stalled.wait_closed()
        assert stalled.events[-1] == {
            "type": "websocket.close",
            "code": 1008,
            "reason": "Client too slow: send queue full",
        }
        assert [
            event.get("text")
            for event in stalled.events
            if event["type"] == "websocket.send"
        ] == ['{"joined":"lobby"}']
