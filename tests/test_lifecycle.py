"""django_ws.lifecycle: one state per connection, moved only in one direction."""

from __future__ import annotations

from typing import Any

from django_ws import WebSocketHandler
from django_ws.lifecycle import ConnectionState
from tests.core_support import client


async def test_a_connection_goes_from_connecting_to_open_to_closed() -> None:
    seen: list[tuple[str, ConnectionState, bool, bool]] = []

    class Recorder(WebSocketHandler):
        async def on_open(self) -> None:
            seen.append(("open", self.state, self.connected, self.closed))

        async def on_close(self) -> None:
            seen.append(("close", self.state, self.connected, self.closed))

    async with client(Recorder).connect("/ws") as ws:
        await ws.wait_idle()

    assert seen == [
        ("open", ConnectionState.OPEN, True, False),
        ("close", ConnectionState.CLOSED, False, True),
    ]


async def test_closing_from_a_hook_moves_to_closing_and_ignores_later_messages() -> None:
    received: list[Any] = []

    class Closer(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            received.append((data, self.state))
            self.close(4000, "bye")
            received.append(("after close", self.state))

    async with client(Closer).connect("/ws") as ws:
        await ws.send_json("first")
        await ws.send_json("second")
        assert await ws.receive_close() == 4000

    assert received == [("first", ConnectionState.OPEN), ("after close", ConnectionState.CLOSING)]


async def test_a_middleware_that_closes_before_accept_refuses_the_handshake() -> None:
    states: list[ConnectionState] = []

    def refuse(next_link: Any) -> Any:
        async def middleware(ws: WebSocketHandler) -> None:
            ws.close()
            states.append(ws.state)
            await next_link(ws)

        return middleware

    class Guarded(WebSocketHandler):
        middleware = [refuse]

    async with client(Guarded).connect("/ws") as ws:
        assert (ws.accepted, ws.status, ws.close_code) == (False, 403, 1000)

    assert states == [ConnectionState.REFUSED]


async def test_sending_before_accept_names_the_expected_and_the_actual_state() -> None:
    errors: list[str] = []

    def early(next_link: Any) -> Any:
        async def middleware(ws: WebSocketHandler) -> None:
            try:
                ws.send("too early")
            except RuntimeError as error:
                errors.append(str(error))
            await next_link(ws)

        return middleware

    class Early(WebSocketHandler):
        middleware = [early]

    async with client(Early).connect("/ws") as ws:
        await ws.wait_idle()

    assert errors == [
        "Expected the connection to be OPEN to send, but it is CONNECTING; send from "
        "on_open or later, not from a middleware before calling the next one."
    ]


async def test_accepting_twice_raises_naming_both_states() -> None:
    errors: list[str] = []

    class Twice(WebSocketHandler):
        async def on_open(self) -> None:
            try:
                await self.open_and_serve()
            except RuntimeError as error:
                errors.append(str(error))

    async with client(Twice).connect("/ws") as ws:
        await ws.wait_idle()

    assert errors == [
        "Expected the connection to be CONNECTING to send 'websocket.accept', "
        "but it is OPEN."
    ]



async def test_an_idle_socket_keeps_nothing_of_its_last_message() -> None:
    """Most sockets idle far longer than they work: the last message must not stay."""
    import gc
    import weakref

    from django_ws.codecs import TextCodec

    class Decoded:
        def __init__(self, text: str) -> None:
            self.text = text

    class Boxing(TextCodec):
        def decode(self, text: str) -> Any:
            return Decoded(text)

    kept: list[weakref.ref[Any]] = []

    class Echo(WebSocketHandler):
        codec = Boxing()

        async def on_message(self, data: Any) -> Any:
            kept.append(weakref.ref(data))
            return data.text

    async with client(Echo).connect("/ws") as ws:
        await ws.send_text("hello")
        assert await ws.receive_text() == "hello"
        await ws.wait_idle()  # the socket now waits for its next message
        gc.collect()
        assert len(kept) == 1 and kept[0]() is None
