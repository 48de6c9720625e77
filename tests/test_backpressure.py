"""django_ws.backpressure: a send that never waits is made to wait while Twisted is full."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from django_ws.backpressure import PausedWrites, with_backpressure


class Protocol:
    """Stands in for daphne's protocol: what matters is ``registerProducer``."""

    def __init__(self) -> None:
        self.producer: PausedWrites | None = None
        self.written: list[Any] = []

    def registerProducer(self, producer: PausedWrites, streaming: bool) -> None:  # noqa: N802
        assert streaming is True
        self.producer = producer


async def handle_reply(protocol: Protocol, message: Any) -> None:
    protocol.written.append(message)


async def test_sends_wait_while_the_transport_is_paused_and_go_on_when_resumed() -> None:
    protocol = Protocol()
    send = with_backpressure({"type": "websocket"}, functools.partial(handle_reply, protocol))
    assert protocol.producer is not None

    await send("first")
    protocol.producer.pauseProducing()
    second = asyncio.ensure_future(send("second"))
    await asyncio.sleep(0)
    assert (protocol.written, second.done()) == (["first", "second"], False)

    protocol.producer.resumeProducing()
    await asyncio.wait_for(second, 1)
    assert second.done()


async def test_a_stopped_producer_releases_waiting_sends() -> None:
    protocol = Protocol()
    send = with_backpressure({"type": "websocket"}, functools.partial(handle_reply, protocol))
    assert protocol.producer is not None
    protocol.producer.pauseProducing()
    waiting = asyncio.ensure_future(send("x"))
    await asyncio.sleep(0)

    protocol.producer.stopProducing()

    await asyncio.wait_for(waiting, 1)
    assert protocol.written == ["x"]


def test_a_scope_with_extensions_keeps_the_servers_own_send() -> None:
    protocol = Protocol()
    send = functools.partial(handle_reply, protocol)

    assert with_backpressure({"extensions": {}}, send) is send
    assert protocol.producer is None


def test_a_send_of_another_shape_is_left_alone() -> None:
    async def send(message: Any) -> None: ...

    assert with_backpressure({}, send) is send


def test_a_protocol_that_already_has_a_producer_keeps_it() -> None:
    class Busy:
        def registerProducer(self, producer: Any, streaming: bool) -> None:  # noqa: N802
            raise RuntimeError("Cannot register producer, already have one")

    send = functools.partial(handle_reply, Busy())

    assert with_backpressure({}, send) is send
