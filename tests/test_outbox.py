"""django_ws.outbox: one ordered, bounded send path, whatever the server's send returns."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from django_ws.exceptions import ConnectionClosed
from django_ws.outbox import SENT, Outbox, PendingSend


class FutureSend:
    """A ``send`` result shaped like granian's: a future that is its own iterator.

    It has no ``send``/``throw``, and its first ``next()`` yields itself even when
    nothing blocks; it is done on a later turn of the loop.
    """

    _asyncio_future_blocking = False

    def __init__(self) -> None:
        self._future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(self._future.set_result, None)

    def __await__(self) -> FutureSend:
        return self

    def __iter__(self) -> FutureSend:
        return self

    def __next__(self) -> Any:
        if self._future.done():
            raise StopIteration(self._future.result())
        self._asyncio_future_blocking = True
        return self

    def __getattr__(self, name: str) -> Any:  # done, add_done_callback, get_loop...
        return getattr(self._future, name)


def recording_outbox(send: Callable[[dict[str, Any]], Any], limit: int = 10) -> Outbox:
    return Outbox(send, limit=limit, on_overflow=lambda: None, on_lost=lambda error: None)


def text(n: int) -> dict[str, Any]:
    return {"type": "websocket.send", "text": str(n)}


async def test_a_send_that_finishes_on_its_first_step_costs_no_task() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    outbox = recording_outbox(send)

    assert outbox.put(text(1)) is SENT
    assert sent == [text(1)]


async def test_a_future_shaped_send_is_awaited_in_order_never_stepped_by_hand() -> None:
    sent: list[dict[str, Any]] = []

    def send(message: dict[str, Any]) -> FutureSend:
        sent.append(message)
        return FutureSend()

    outbox = recording_outbox(send)
    results = [outbox.put(text(n)) for n in range(5)]
    await results[-1]  # awaiting the last waits for every one before it

    assert sent == [text(n) for n in range(5)]
    assert isinstance(results[0], PendingSend)
    assert len(outbox) == 0


async def test_a_future_shaped_send_that_is_already_done_counts_as_sent() -> None:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)

    outbox = recording_outbox(lambda message: future)

    assert outbox.put(text(1)) is SENT


async def test_queued_sends_past_the_limit_call_on_overflow() -> None:
    overflowed: list[bool] = []
    gate = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        await gate.wait()

    outbox = Outbox(send, limit=2, on_overflow=lambda: overflowed.append(True), on_lost=print)
    for n in range(2):  # the limit counts the one the server holds
        outbox.put(text(n))
    assert (len(outbox), overflowed) == (2, [])
    outbox.put(text(2))

    assert (len(outbox), overflowed) == (2, [True])
    gate.set()


async def test_a_close_refused_for_its_code_is_sent_again_with_the_portable_code() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        code = message.get("code", 1000)
        if message["type"] == "websocket.close" and not (code == 1000 or 3000 <= code <= 4999):
            raise ValueError(f"invalid close code {code}")
        sent.append(message)

    outbox = recording_outbox(send)
    await outbox.put_close({"type": "websocket.close", "code": 1011, "reason": "boom"}, 1011)

    assert sent == [{"type": "websocket.close", "code": 4011, "reason": "boom"}]


async def test_a_queued_close_refused_for_its_code_is_replaced_too() -> None:
    sent: list[dict[str, Any]] = []
    gate = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "websocket.send":
            await gate.wait()
        elif message["code"] == 1008:
            raise ValueError("invalid close code 1008")
        sent.append(message)

    outbox = recording_outbox(send)
    outbox.put(text(1))
    closing = outbox.put_close({"type": "websocket.close", "code": 1008, "reason": ""}, 1008)
    gate.set()
    await closing

    assert sent == [text(1), {"type": "websocket.close", "code": 4008, "reason": ""}]


async def test_a_send_error_other_than_a_close_code_means_the_client_is_gone() -> None:
    lost: list[BaseException] = []

    async def send(message: dict[str, Any]) -> None:
        raise OSError("client disconnected")

    outbox = Outbox(send, limit=10, on_overflow=lambda: None, on_lost=lost.append)
    result = outbox.put(text(1))

    assert [type(error) for error in lost] == [OSError]
    with pytest.raises(ConnectionClosed):
        await result
