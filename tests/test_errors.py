"""The error table: what each failure does to the socket, the hooks and the log."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import pytest

from django_ws import TASK_WS_CLOSED, MessageDecodeError, WebSocketHandler
from django_ws.exceptions import ConnectionClosed
from tests.core_support import app_for, client, frames

HOOKS_THAT_CLOSE_WITH_1011 = ["on_open", "on_message"]


class Echo(WebSocketHandler):
    async def on_message(self, data: Any) -> Any:
        return {"echo": data}


def make_failing(
    fail_in: str, events: list[Any], tasks: list[asyncio.Task[Any]] | None = None
) -> type[WebSocketHandler]:
    """A handler whose ``fail_in`` hook raises; hooks, errors and tasks recorded."""

    class Failing(WebSocketHandler):
        async def on_open(self) -> None:
            task = self.start_task("idle", asyncio.Event().wait)
            if tasks is not None:
                tasks.append(task)
            self.fail_if("on_open")

        async def on_message(self, data: Any) -> None:
            self.fail_if("on_message")

        async def on_close(self) -> None:
            events.append("close")
            self.fail_if("on_close")

        async def on_error(self, error: Exception) -> None:
            events.append(("on_error", type(error), str(error)))

        def fail_if(self, hook: str) -> None:
            if hook == fail_in:
                raise RuntimeError(f"boom in {hook}")

    return Failing


def records_of(
    caplog: pytest.LogCaptureFixture, level: int = logging.DEBUG
) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "django_ws" and r.levelno >= level]


@pytest.mark.parametrize("hook", HOOKS_THAT_CLOSE_WITH_1011)
async def test_an_exception_in_a_hook_closes_with_1011(
    hook: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Any] = []
    tasks: list[asyncio.Task[Any]] = []
    Failing = make_failing(hook, events, tasks)
    async with client(Failing).connect("/ws") as ws:
        await ws.send_json("hello")
        assert await ws.receive_close() == 1011
        assert ws.close_reason == "Internal server error"
        await ws.wait_closed()

    assert events == [("on_error", RuntimeError, f"boom in {hook}"), "close"]
    await asyncio.wait(tasks, timeout=3)
    [task] = tasks
    assert task.cancelled()
    # Python 3.10 drops the cancel message from a finished task's result();
    # the task itself still saw it (tests/test_handler.py checks that inside).
    message = TASK_WS_CLOSED if sys.version_info >= (3, 11) else None
    with pytest.raises(asyncio.CancelledError, match=message):
        task.result()
    [record] = records_of(caplog, logging.ERROR)
    assert record.getMessage() == f"Error in <{Failing.__qualname__} '/ws'>"
    assert record.exc_info is not None
    assert str(record.exc_info[1]) == f"boom in {hook}"
    assert (
        f"boom in {hook}" in caplog.text
        and "Traceback (most recent call last)" in caplog.text
    )


async def test_an_exception_in_on_close_goes_to_on_error_and_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[Any] = []
    Failing = make_failing("on_close", events)
    async with client(Failing).connect("/ws") as ws:
        await ws.send_json("hello")
    # The client closed first, so there is no socket left to close with 1011.
    assert events.count("close") == 1
    assert ("on_error", RuntimeError, "boom in on_close") in events
    [record] = records_of(caplog, logging.ERROR)
    assert record.getMessage() == f"Error in <{Failing.__qualname__} '/ws'>"
    assert record.exc_info is not None


async def test_an_exception_in_a_sync_hook_closes_with_1011(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors: list[Exception] = []

    class SyncFailing(WebSocketHandler):
        def on_message(self, data: Any) -> None:
            raise KeyError("missing")

        def on_error(self, error: Exception) -> None:
            errors.append(error)

    async with client(SyncFailing).connect("/ws") as ws:
        await ws.send_json("hello")
        assert await ws.receive_close() == 1011
    assert [type(error) for error in errors] == [KeyError]
    [record] = records_of(caplog, logging.ERROR)
    assert record.exc_info is not None and record.exc_info[0] is KeyError


async def test_an_exception_in_on_error_is_logged_and_the_socket_still_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closes: list[str] = []

    class BadOnError(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            raise RuntimeError("first")

        async def on_error(self, error: Exception) -> None:
            raise RuntimeError("second")

        async def on_close(self) -> None:
            closes.append("close")

    async with client(BadOnError).connect("/ws") as ws:
        await ws.send_json("hello")
        assert await ws.receive_close() == 1011
    assert closes == ["close"]
    messages = [
        (r.getMessage(), str(r.exc_info[1]))
        for r in records_of(caplog, logging.ERROR)
        if r.exc_info
    ]
    assert messages == [
        (f"Error in <{BadOnError.__qualname__} '/ws'>", "first"),
        (f"on_error of <{BadOnError.__qualname__} '/ws'> failed", "second"),
    ]


async def test_other_connections_keep_working_when_one_fails() -> None:
    class Crashy(WebSocketHandler):
        async def on_message(self, data: Any) -> Any:
            if data == "crash":
                raise RuntimeError("crash")
            return {"echo": data}

    ws_client = client(Crashy)
    async with ws_client.connect("/ws") as bystander:
        async with ws_client.connect("/ws") as victim:
            await victim.send_json("crash")
            assert await victim.receive_close() == 1011
        await bystander.send_json("still here")
        assert await bystander.receive_json() == {"echo": "still here"}
        assert bystander.close_code is None


async def test_invalid_json_closes_with_1007_and_warns_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors: list[Exception] = []
    messages: list[Any] = []

    class Strict(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            messages.append(data)

        async def on_error(self, error: Exception) -> None:
            errors.append(error)

    async with client(Strict).connect("/ws") as ws:
        await ws.send_text("{not json")
        assert await ws.receive_close() == 1007
        assert ws.close_reason == "Invalid message"

    assert messages == []
    [error] = errors
    assert isinstance(error, MessageDecodeError)
    assert str(error) == (
        "Invalid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    )
    assert records_of(caplog, logging.ERROR) == []
    [record] = records_of(caplog, logging.WARNING)
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"Closing <{Strict.__qualname__} '/ws'>: {error}"
    assert record.exc_info is None
    assert "Traceback" not in caplog.text


async def test_messages_after_a_close_are_not_handled() -> None:
    seen: list[Any] = []

    class Strict(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            seen.append(data)

    async with client(Strict).connect("/ws") as ws:
        await ws.send_text("oops")
        await ws.send_text('"after"')  # queued before the application reads "oops"
        assert await ws.receive_close() == 1007
        await ws.wait_closed()
    assert seen == []
    assert ws.events[-1] == {
        "type": "websocket.close",
        "code": 1007,
        "reason": "Invalid message",
    }


async def test_unknown_asgi_event_types_are_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with client(Echo).connect("/ws") as ws:
        await ws.send_event({"type": "websocket.something.new", "data": 1})
        await ws.send_json("hi")
        assert await ws.receive_json() == {"echo": "hi"}

    assert ws.events == [
        {"type": "websocket.accept"},
        {"type": "websocket.send", "text": '{"echo":"hi"}'},
    ]
    assert records_of(caplog, logging.WARNING) == []


async def test_unknown_event_types_are_ignored_after_a_failed_on_open() -> None:
    events: list[Any] = []
    failing = client(make_failing("on_open", events))
    async with failing.connect("/ws", answer_close=False) as ws:
        assert await ws.receive_close() == 1011
        await ws.send_event({"type": "websocket.something.new"})
        await ws.send_json("ignored")
        await ws.assert_nothing_received()
        await ws.close(1011)
    assert events.count("close") == 1


async def test_unknown_lifespan_events_are_ignored() -> None:
    app = app_for()
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    for message in ("lifespan.something.new", "lifespan.startup", "lifespan.shutdown"):
        inbox.put_nowait({"type": message})
    await asyncio.wait_for(app({"type": "lifespan"}, inbox.get, send), 5)
    assert sent == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]


async def test_a_client_vanishing_mid_send_logs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closes: list[str] = []
    stopped: list[type[BaseException]] = []
    streaming = asyncio.Event()

    class Stream(WebSocketHandler):
        async def on_open(self) -> None:
            self.start_task("stream", self.stream)

        async def stream(self) -> None:
            try:
                for n in range(100_000):
                    await self.send({"n": n})
                    self.send({"unawaited": n})
                    streaming.set()
                    await asyncio.sleep(0)
            except BaseException as error:
                stopped.append(type(error))
                raise

        async def on_close(self) -> None:
            closes.append("close")

    async with client(Stream).connect("/ws") as ws:
        await asyncio.wait_for(streaming.wait(), 3)
        await ws.close(1001)

    assert closes == ["close"]
    # The stream stops on its next send (ConnectionClosed) or, if the close is
    # handled first, by the task's cancellation: both are silent.
    assert stopped in ([ConnectionClosed], [asyncio.CancelledError])
    assert records_of(caplog, logging.INFO) == []
    assert all(record.exc_info is None for record in caplog.records)


async def test_an_awaited_send_after_the_client_left_raises_connection_closed() -> None:
    outcomes: list[Any] = []
    left = asyncio.Event()

    class Late(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            await left.wait()
            try:
                await self.send({"too": "late"})
            except ConnectionClosed as error:
                outcomes.append(error.code)
                raise

    async with client(Late).connect("/ws") as ws:
        await ws.send_json("go")
        await ws.send_event({"type": "websocket.disconnect", "code": 1001})
        left.set()
        await ws.wait_closed()
    assert outcomes == [1006]  # the send found the client gone
    assert frames(ws) == []


async def test_a_task_exception_is_logged_and_the_socket_stays_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class TaskFails(WebSocketHandler):
        async def on_open(self) -> None:
            self.start_task("fail", self.fail)

        async def fail(self) -> None:
            raise ValueError("task broke")

        async def on_message(self, data: Any) -> Any:
            return {"echo": data}

    async with client(TaskFails).connect("/ws") as ws:
        await ws.send_json("still open")
        assert await ws.receive_json() == {"echo": "still open"}
    [record] = records_of(caplog, logging.ERROR)
    assert record.getMessage() == f"Task of <{TaskFails.__qualname__} '/ws'> failed"
    assert record.exc_info is not None and str(record.exc_info[1]) == "task broke"


async def test_an_unknown_scope_type_raises() -> None:
    app = app_for()
    with pytest.raises(
        ValueError, match="django-ws cannot handle ASGI scope type 'webtransport'"
    ):
        await app({"type": "webtransport"}, None, None)
