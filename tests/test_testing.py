"""The in-process test client: the API users test their own handlers with."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.urls import path

from django_ws import DenyConnection, WebSocketHandler
from django_ws.testing import WebSocketTestClient
from tests.core_support import client, client_for, frames


class Echo(WebSocketHandler):
    subprotocols = ("v1",)

    async def on_message(self, data: Any) -> Any:
        if isinstance(data, bytes):
            return await self.send_bytes(data)
        return {"echo": data}


class Session(WebSocketHandler):
    async def on_open(self) -> None:
        request = self.request
        self.send(
            {
                "user": str(request.user),
                "session_key": request.session.session_key,
                "cookies": sorted(request.COOKIES),
            }
        )


async def test_connect_send_and_receive_json_text_and_bytes() -> None:
    async with client(Echo).connect("/ws") as ws:
        assert ws.accepted and ws.status is None
        await ws.send_json({"a": [1, 2]})
        assert await ws.receive_json() == {"echo": {"a": [1, 2]}}
        await ws.send_text('"plain"')
        assert await ws.receive_text() == '{"echo":"plain"}'
        await ws.send_bytes(b"\x00")
        assert await ws.receive_bytes() == b"\x00"


async def test_refusals_carry_their_http_status() -> None:
    class Guarded(WebSocketHandler):
        middleware = [lambda next: _deny_401]

    ws_client = client_for(path("ws", Echo), path("guarded", Guarded))
    async with ws_client.connect("/missing") as ws:
        assert (ws.accepted, ws.status) == (False, 404)
    async with ws_client.connect("/guarded") as ws:
        assert (ws.accepted, ws.status) == (False, 401)
    async with ws_client.connect("/guarded", http_response_extension=False) as ws:
        assert (ws.accepted, ws.status, ws.close_code) == (False, 403, 1008)


async def _deny_401(ws: Any) -> None:
    raise DenyConnection(status=401)


async def test_the_accepted_subprotocol_is_visible() -> None:
    async with client(Echo).connect("/ws", subprotocols=["v0", "v1"]) as ws:
        assert ws.subprotocol == "v1"
    async with client(Echo).connect("/ws", subprotocols=["v0"]) as ws:
        assert ws.subprotocol is None


async def test_assert_nothing_received_passes_when_the_application_sent_nothing() -> None:
    async with client(Echo).connect("/ws") as ws:
        await ws.assert_nothing_received()
        assert ws.events == [{"type": "websocket.accept"}]


async def test_assert_nothing_received_fails_with_the_event_that_arrived() -> None:
    async with client(Echo).connect("/ws") as ws:
        await ws.send_json("hi")
        with pytest.raises(AssertionError) as error:
            await ws.assert_nothing_received()
        assert str(error.value) == (
            "Expected nothing, received "
            "{'type': 'websocket.send', 'text': '{\"echo\":\"hi\"}'}"
        )


async def test_assert_nothing_received_waits_until_the_application_is_idle() -> None:
    """A reply the handler sends after many suspensions is still caught."""

    class Slow(WebSocketHandler):
        async def on_message(self, data: Any) -> Any:
            for _ in range(50):
                await asyncio.sleep(0)
            return "late"

    async with client(Slow).connect("/ws") as ws:
        await ws.send_json("go")
        with pytest.raises(AssertionError, match="Expected nothing, received"):
            await ws.assert_nothing_received()


async def test_assert_nothing_received_passes_once_the_app_has_ended() -> None:
    class Closer(WebSocketHandler):
        async def on_open(self) -> None:
            self.close(4000, "bye")

    async with client(Closer).connect("/ws") as ws:
        assert await ws.receive_close() == 4000
        await ws.wait_closed()
        await ws.assert_nothing_received()


async def test_wait_idle_times_out_while_the_application_is_busy() -> None:
    release = asyncio.Event()

    class Busy(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            await release.wait()

    async with client(Busy).connect("/ws") as ws:
        await ws.send_json("go")
        with pytest.raises(
            asyncio.TimeoutError, match=r"^The application was still busy after 0.05 s$"
        ):
            await ws.wait_idle(timeout=0.05)
        release.set()
        await ws.wait_idle()


async def test_events_lists_every_asgi_event_the_application_sent() -> None:
    async with client(Echo).connect("/ws") as ws:
        await ws.send_json(1)
        assert await ws.receive_json() == {"echo": 1}
        await ws.send_bytes(b"\x02")
        await ws.wait_idle()
    assert ws.events == [
        {"type": "websocket.accept"},
        {"type": "websocket.send", "text": '{"echo":1}'},
        {"type": "websocket.send", "bytes": b"\x02"},
    ]


async def test_a_paused_client_blocks_sends_until_it_reads_again() -> None:
    class Echoes(WebSocketHandler):
        async def on_message(self, data: Any) -> Any:
            return data

    async with client(Echoes).connect("/ws") as ws:
        ws.pause_reading()
        await ws.send_json("held")
        await ws.wait_send_blocked()
        assert frames(ws) == []
        ws.resume_reading()
        assert await ws.receive_json() == "held"


async def test_send_event_delivers_a_raw_asgi_event() -> None:
    codes: list[int | None] = []

    class Watcher(WebSocketHandler):
        async def on_close(self) -> None:
            codes.append(self.close_code)

    async with client(Watcher).connect("/ws") as ws:
        await ws.send_event({"type": "websocket.disconnect", "code": 4003})
        await ws.wait_closed()
    assert codes == [4003]


async def test_without_answer_close_the_application_waits_for_the_client() -> None:
    closes: list[str] = []

    class Closer(WebSocketHandler):
        async def on_open(self) -> None:
            await self.close(4000)

        async def on_close(self) -> None:
            closes.append("closed")

    async with client(Closer).connect("/ws", answer_close=False) as ws:
        assert await ws.receive_close() == 4000
        await ws.wait_idle()
        assert closes == []
        await ws.close(1000)
        assert closes == ["closed"]


async def test_receive_times_out_with_asyncio_timeout_error() -> None:
    async with client(Echo).connect("/ws") as ws:
        with pytest.raises(
            asyncio.TimeoutError, match="Nothing received within 0.05 s"
        ):
            await ws.receive_json(timeout=0.05)


async def test_receive_of_the_wrong_kind_fails_with_what_arrived() -> None:
    async with client(Echo).connect("/ws") as ws:
        await ws.send_bytes(b"\x01")
        with pytest.raises(
            AssertionError,
            match=(
                r"Expected a text frame, got "
                r"\{'type': 'websocket.send', 'bytes': b'\\x01'\}"
            ),
        ):
            await ws.receive_text()
        await ws.send_json("x")
        with pytest.raises(AssertionError, match="Expected a binary frame"):
            await ws.receive_bytes()
        await ws.send_json("y")
        with pytest.raises(AssertionError, match="Expected a close"):
            await ws.receive_close()


async def test_close_code_and_reason_are_recorded() -> None:
    class Closer(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            await self.close(4321, data)

    async with client(Closer).connect("/ws") as ws:
        await ws.send_json("because")
        assert await ws.receive_close() == 4321
        assert (ws.close_code, ws.close_reason) == (4321, "because")


async def test_the_client_close_code_reaches_the_handler() -> None:
    codes: list[int | None] = []

    class Watcher(WebSocketHandler):
        async def on_close(self) -> None:
            codes.append(self.close_code)

    async with client(Watcher).connect("/ws") as ws:
        await ws.close(4002)
    assert codes == [4002]


async def test_query_string_headers_and_cookies_reach_the_request() -> None:
    class Inspect(WebSocketHandler):
        async def on_open(self) -> None:
            request = self.request
            self.send(
                {
                    "q": request.GET.get("q"),
                    "x": request.headers.get("X-Token"),
                    "cookie": request.COOKIES.get("c"),
                }
            )

    ws_client = client(Inspect)
    async with ws_client.connect(
        "/ws", query_string="q=1", headers=[("X-Token", "t")], cookies={"c": "v"}
    ) as ws:
        assert await ws.receive_json() == {"q": "1", "x": "t", "cookie": "v"}


async def test_an_exception_of_the_application_is_raised_by_the_client() -> None:
    class BadInit(WebSocketHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise LookupError("cannot build")

    with pytest.raises(LookupError, match="cannot build"):
        async with client(BadInit).connect("/ws"):
            pass  # pragma: no cover - the connect fails


@pytest.mark.django_db(transaction=True)
async def test_force_login_sets_the_session_so_auth_middleware_sees_the_user(
    settings: Any,
) -> None:
    settings.WS_MIDDLEWARE = ["django_ws.middleware.AuthMiddleware"]
    user = await sync_to_async(User.objects.create_user)("carol")
    ws_client = client(Session)
    await ws_client.force_login(user)
    assert django_settings.SESSION_COOKIE_NAME in ws_client.cookies

    async with ws_client.connect("/ws", cookies={"extra": "1"}) as ws:
        reply = await ws.receive_json()
    assert reply["user"] == "carol"
    assert (
        reply["session_key"]
        == ws_client.cookies[django_settings.SESSION_COOKIE_NAME].value
    )
    assert reply["cookies"] == sorted(["extra", django_settings.SESSION_COOKIE_NAME])

    ws_client.logout()
    async with ws_client.connect("/ws") as ws:
        assert await ws.receive_json() == {
            "user": "AnonymousUser",
            "session_key": None,
            "cookies": [],
        }


async def test_the_ws_client_fixture_serves_the_project(
    settings: Any, ws_client: WebSocketTestClient
) -> None:
    settings.ROOT_WS_URLCONF = "tests.routing_apps.explicit_ws_urls"
    assert isinstance(ws_client, WebSocketTestClient)
    async with ws_client.connect("/chat/lobby") as ws:
        assert await ws.receive_json() == {
            "path": "/chat/lobby",
            "args": [],
            "kwargs": {"room": "lobby"},
        }
        await ws.send_json("hi")
        assert await ws.receive_json() == {"echo": "hi"}
