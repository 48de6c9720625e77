"""django_ws.backpressure: a send that never waits is made to wait while Twisted is full."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from django_ws.backpressure import PausedWrites, with_backpressure


class Transport:
    """Stands in for Twisted's TCP transport: one producer at a time."""

    def __init__(self, producer: Any = None) -> None:
        self.producer = producer
        self.streamingProducer = producer is not None

    def registerProducer(self, producer: Any, streaming: bool) -> None:  # noqa: N802
        if self.producer is not None:
            raise RuntimeError("Cannot register producer: one was never unregistered")
        self.producer, self.streamingProducer = producer, streaming

    def unregisterProducer(self) -> None:  # noqa: N802
        self.producer, self.streamingProducer = None, False


class Protocol:
    """Stands in for daphne's protocol: what matters is its ``transport``."""

    def __init__(self, transport: Transport | None = None) -> None:
        self.transport = transport or Transport()
        self.written: list[Any] = []

    @property
    def producer(self) -> PausedWrites | None:
        return self.transport.producer


class Channel:
    """Stands in for the HTTP channel daphne upgraded from: a push producer."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:  # noqa: N802
        self.calls.append("pause")

    def resumeProducing(self) -> None:  # noqa: N802
        self.calls.append("resume")

    def stopProducing(self) -> None:  # noqa: N802
        self.calls.append("stop")


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


async def test_the_producer_already_on_the_transport_still_hears_everything() -> None:
    channel = Channel()
    protocol = Protocol(Transport(channel))
    send = with_backpressure({}, functools.partial(handle_reply, protocol))
    producer = protocol.producer
    assert isinstance(producer, PausedWrites)

    producer.pauseProducing()
    waiting = asyncio.ensure_future(send("x"))
    await asyncio.sleep(0)
    assert not waiting.done()
    producer.resumeProducing()
    await asyncio.wait_for(waiting, 1)
    producer.stopProducing()

    assert channel.calls == ["pause", "resume", "stop"]


def test_a_transport_with_a_pull_producer_keeps_it() -> None:
    transport = Transport(Channel())
    transport.streamingProducer = False
    send = functools.partial(handle_reply, Protocol(transport))

    assert with_backpressure({}, send) is send
    assert isinstance(transport.producer, Channel)
