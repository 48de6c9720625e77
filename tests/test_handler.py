"""WebSocketHandler: hooks, sending, closing, accept options, request, tasks, codecs."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import uuid
import weakref
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import path, re_path
from django.utils import timezone
from django.utils.translation import gettext_lazy

import django_ws.schedule
from django_ws import TASK_DUPLICATE_STARTED, TASK_WS_CLOSED, WebSocketHandler
from django_ws.codecs import JSONCodec, TextCodec
from django_ws.exceptions import MessageDecodeError
from tests.core_support import client, client_for, frames

# Hooks ------------------------------------------------------------------------


async def test_hooks_run_in_order_open_message_close() -> None:
    events: list[Any] = []

    class Recorder(WebSocketHandler):
        async def on_open(self) -> None:
            events.append("open")

        async def on_message(self, data: Any) -> None:
            events.append(("message", data))

        async def on_close(self) -> None:
            events.append("close")

    async with client(Recorder).connect("/ws") as ws:
        await ws.send_json({"n": 1})
        await ws.send_json({"n": 2})

    assert events == ["open", ("message", {"n": 1}), ("message", {"n": 2}), "close"]


def closing_recorder(events: list[str]) -> type[WebSocketHandler]:
    """A handler that closes, fails or waits as the client asks; on_close recorded."""

    class Closing(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            if data == "close":
                self.close(4000, "asked to")
            elif data == "fail":
                raise RuntimeError("boom")

        async def on_close(self) -> None:
            events.append("close")

    return Closing


async def test_on_close_runs_once_when_the_client_closes() -> None:
    events: list[str] = []
    async with client(closing_recorder(events)).connect("/ws") as ws:
        await ws.send_json("hello")
        await ws.close(1000)
    assert events == ["close"]


async def test_on_close_runs_once_when_the_server_closes() -> None:
    events: list[str] = []
    async with client(closing_recorder(events)).connect("/ws") as ws:
        await ws.send_json("close")
        assert await ws.receive_close() == 4000
        await ws.wait_closed()
    assert events == ["close"]


async def test_on_close_runs_once_when_a_hook_fails() -> None:
    events: list[str] = []
    async with client(closing_recorder(events)).connect("/ws") as ws:
        await ws.send_json("fail")
        assert await ws.receive_close() == 1011
        await ws.wait_closed()
    assert events == ["close"]


async def test_on_close_runs_once_when_the_connection_is_aborted(settings: Any) -> None:
    """A client that stops reading fills the send queue: the socket is aborted, 1008."""
    events: list[str] = []
    tasks: list[asyncio.Task[Any]] = []

    class Flood(WebSocketHandler):
        max_send_queue = 3

        async def on_open(self) -> None:
            tasks.append(self.start_task("idle", asyncio.Event().wait))

        async def on_message(self, data: Any) -> None:
            for n in range(10):
                self.send({"n": n})

        async def on_close(self) -> None:
            events.append("close")

    async with client(Flood).connect("/ws") as ws:
        ws.pause_reading()
        await ws.send_json("flood")
        assert await ws.receive_close() == 1008
        await ws.wait_closed()

    assert events == ["close"]
    assert ws.events[-1] == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "Client too slow: send queue full",
    }
    assert frames(ws) == []  # the blocked send was dropped
    assert tasks[0].cancelled()


# Sending ----------------------------------------------------------------------


async def test_a_value_returned_from_on_message_is_sent() -> None:
    class Echo(WebSocketHandler):
        async def on_message(self, data: Any) -> Any:
            return {"echo": data}

    async with client(Echo).connect("/ws") as ws:
        await ws.send_json({"text": "hi"})
        assert await ws.receive_json() == {"echo": {"text": "hi"}}


async def test_none_returned_from_on_message_sends_nothing() -> None:
    class Quiet(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            return None

    async with client(Quiet).connect("/ws") as ws:
        await ws.send_json("hi")
        await ws.assert_nothing_received()


async def test_binary_frames_arrive_as_bytes() -> None:
    class BinaryEcho(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            assert type(data) is bytes
            await self.send_bytes(data[::-1])

    async with client(BinaryEcho).connect("/ws") as ws:
        await ws.send_bytes(b"\x00\x01\xff")
        assert await ws.receive_bytes() == b"\xff\x01\x00"


async def test_unawaited_sends_arrive_in_order() -> None:
    class Burst(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            for n in range(100):
                self.send({"n": n})

    async with client(Burst).connect("/ws") as ws:
        await ws.send_json("go")
        assert [await ws.receive_json() for _ in range(100)] == [
            {"n": n} for n in range(100)
        ]
        await ws.assert_nothing_received()


async def test_unawaited_sends_keep_order_when_the_server_suspends_on_each_send() -> (
    None
):
    """Under back-pressure the rest queue behind the first: none lost or reordered."""

    class Burst(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            for n in range(100):
                self.send({"n": n})
            self.send_text("last")

    async with client(Burst).connect("/ws") as ws:
        ws.yield_each_send = True
        await ws.send_json("go")
        texts = [await ws.receive_text() for _ in range(101)]
    assert texts == [f'{{"n":{n}}}' for n in range(100)] + ["last"]


async def test_awaited_send_returns_once_the_server_took_the_frame() -> None:
    returned = asyncio.Event()

    class Awaiting(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            await self.send({"first": True})
            returned.set()

    async with client(Awaiting).connect("/ws") as ws:
        ws.pause_reading()
        await ws.send_json("go")
        await ws.wait_send_blocked()
        assert not returned.is_set()
        assert frames(ws) == []

        ws.resume_reading()
        await ws.wait_idle()
        assert returned.is_set()
        assert frames(ws) == [{"type": "websocket.send", "text": '{"first":true}'}]


async def test_send_text_and_send_bytes_send_frames_as_is() -> None:
    class Raw(WebSocketHandler):
        async def on_open(self) -> None:
            self.send_text('{"not": "re-encoded"}')
            await self.send_bytes(b"\x89PNG")

    async with client(Raw).connect("/ws") as ws:
        assert await ws.receive_text() == '{"not": "re-encoded"}'
        assert await ws.receive_bytes() == b"\x89PNG"


async def test_close_sends_code_and_reason_after_queued_messages() -> None:
    seen: list[Any] = []

    class Closer(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            self.send({"bye": True})
            self.close(4001, "done")
            seen.append((self.close_code, self.close_reason))

    async with client(Closer).connect("/ws") as ws:
        await ws.send_json("go")
        assert await ws.receive_json() == {"bye": True}
        assert await ws.receive_close() == 4001
        assert ws.close_reason == "done"
    assert seen == [(4001, "done")]


async def test_close_defaults_to_1000_with_no_reason() -> None:
    class Closer(WebSocketHandler):
        async def on_open(self) -> None:
            await self.close()

    async with client(Closer).connect("/ws") as ws:
        assert await ws.receive_close() == 1000
        assert ws.close_reason == ""


async def test_frames_sent_after_close_are_dropped_quietly() -> None:
    class Late(WebSocketHandler):
        async def on_open(self) -> None:
            self.close(1000)
            self.send({"late": True})

    async with client(Late).connect("/ws") as ws:
        assert await ws.receive_close() == 1000
        await ws.assert_nothing_received()


# Accept options ---------------------------------------------------------------


class Versioned(WebSocketHandler):
    subprotocols = ("chat.v2", "chat.v1")

    async def on_open(self) -> None:
        self.send({"subprotocol": self.subprotocol})


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["chat.v1", "chat.v2"], "chat.v1"),  # the client's first supported choice
        (["chat.v3", "chat.v2"], "chat.v2"),
        (["chat.v3"], None),  # none supported: accepted without one
        ([], None),  # none offered
    ],
)
async def test_the_first_offered_supported_subprotocol_is_chosen(
    offered: list[str], chosen: str | None
) -> None:
    async with client(Versioned).connect("/ws", subprotocols=offered) as ws:
        assert ws.accepted
        assert ws.subprotocol == chosen
        assert await ws.receive_json() == {"subprotocol": chosen}


async def test_accept_headers_go_out_with_the_accept() -> None:
    class WithHeaders(WebSocketHandler):
        accept_headers = [("X-Server", "django-ws"), ("Set-Cookie", "seen=1")]

    async with client(WithHeaders).connect("/ws") as ws:
        assert ws.accept_headers == [
            (b"X-Server", b"django-ws"),
            (b"Set-Cookie", b"seen=1"),
        ]


async def test_a_closed_connection_is_freed_at_once_not_by_the_garbage_collector() -> None:
    # No reference cycle runs through a connection: with the cyclic collector off,
    # reference counting alone frees it (and what the server lent it) once it closes.
    connections: list[weakref.ref[WebSocketHandler]] = []

    class Tracked(WebSocketHandler):
        async def on_open(self) -> None:
            connections.append(weakref.ref(self))

        async def on_message(self, data: Any) -> Any:
            return data

    gc.collect()
    gc.disable()
    try:
        async with client(Tracked).connect("/ws") as ws:
            await ws.send_json("hello")
            assert await ws.receive_json() == "hello"
            assert connections[0]() is not None
        assert connections[0]() is None
    finally:
        gc.enable()


# The request ------------------------------------------------------------------


async def test_the_request_is_completed_on_first_use_keeping_what_was_set_before() -> None:
    class Inspect(WebSocketHandler):
        async def on_open(self) -> None:
            request = self.request
            request.user = "set before"
            built_before = "META" in vars(request)
            self.send(
                {
                    "built_before": built_before,
                    "path": request.path,
                    "user": request.user,
                    "has_session": hasattr(request, "session"),
                }
            )

    async with client(Inspect).connect("/ws") as ws:
        assert await ws.receive_json() == {
            "built_before": False,
            "path": "/ws",
            "user": "set before",
            "has_session": False,
        }


async def test_request_is_a_django_request_of_the_handshake() -> None:
    class Inspect(WebSocketHandler):
        async def on_open(self) -> None:
            request = self.request
            self.send(
                {
                    "path": request.path,
                    "method": request.method,
                    "user_agent": request.headers["User-Agent"],
                    "cookie": request.COOKIES["flavour"],
                    "query": request.GET.getlist("tag"),
                    "meta_query": request.META["QUERY_STRING"],
                    "meta_agent": request.META["HTTP_USER_AGENT"],
                    "host": request.get_host(),
                }
            )

    async with client(Inspect, "rooms/lobby").connect(
        "/rooms/lobby",
        query_string={"tag": ["a", "b"]},
        headers=[("User-Agent", "pytest-client")],
        cookies={"flavour": "mint"},
    ) as ws:
        assert await ws.receive_json() == {
            "path": "/rooms/lobby",
            "method": "GET",
            "user_agent": "pytest-client",
            "cookie": "mint",
            "query": ["a", "b"],
            "meta_query": "tag=a&tag=b",
            "meta_agent": "pytest-client",
            "host": "testserver",
        }


class Arguments(WebSocketHandler):
    async def on_open(self) -> None:
        self.send({"args": list(self.args), "kwargs": self.kwargs})


@pytest.mark.parametrize(
    ("pattern", "url", "args", "kwargs"),
    [
        (
            path("rooms/<int:room>/<slug:name>", Arguments),
            "/rooms/7/general",
            [],
            {"room": 7, "name": "general"},
        ),
        (
            path("files/<path:rest>", Arguments),
            "/files/a/b.txt",
            [],
            {"rest": "a/b.txt"},
        ),
        (
            re_path(r"^items/(\d+)/(\w+)$", Arguments),
            "/items/42/abc",
            ["42", "abc"],
            {},
        ),
        (re_path(r"^items/(?P<item>\d+)$", Arguments), "/items/42", [], {"item": "42"}),
        (path("plain", Arguments), "/plain", [], {}),
    ],
)
async def test_url_arguments_land_on_args_and_kwargs(
    pattern: Any, url: str, args: list[Any], kwargs: dict[str, Any]
) -> None:
    async with client_for(pattern).connect(url) as ws:
        assert await ws.receive_json() == {"args": args, "kwargs": kwargs}


async def test_connected_and_closed_flags_follow_the_lifecycle() -> None:
    seen: list[tuple[str, bool, bool]] = []

    class Flags(WebSocketHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            seen.append(("init", self.connected, self.closed))

        async def on_open(self) -> None:
            seen.append(("open", self.connected, self.closed))

        async def on_message(self, data: Any) -> None:
            seen.append(("message", self.connected, self.closed))

        async def on_close(self) -> None:
            seen.append(("close", self.connected, self.closed))

    async with client(Flags).connect("/ws") as ws:
        await ws.send_json("hi")
    assert seen == [
        ("init", False, False),
        ("open", True, False),
        ("message", True, False),
        ("close", False, True),
    ]


# Tasks ------------------------------------------------------------------------


async def test_start_task_cancels_a_running_task_of_the_same_id() -> None:
    cancelled: list[tuple[str, tuple[Any, ...]]] = []
    tasks: list[asyncio.Task[Any]] = []

    class Jobs(WebSocketHandler):
        async def on_message(self, data: Any) -> None:
            task = self.start_task("job", self.job, args=(data,))
            assert self.tasks["job"] is task
            tasks.append(task)

        async def job(self, name: str) -> None:
            self.send({"started": name})
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError as error:
                cancelled.append((name, error.args))
                raise

    async with client(Jobs).connect("/ws") as ws:
        await ws.send_json("first")
        assert await ws.receive_json() == {"started": "first"}
        await ws.send_json("second")
        assert await ws.receive_json() == {"started": "second"}
        assert cancelled == [("first", (TASK_DUPLICATE_STARTED,))]
    await asyncio.wait(tasks, timeout=3)

    assert cancelled == [
        ("first", (TASK_DUPLICATE_STARTED,)),
        ("second", (TASK_WS_CLOSED,)),
    ]
    assert all(task.cancelled() for task in tasks)


async def test_every_task_is_cancelled_when_the_socket_closes() -> None:
    tasks: dict[str, asyncio.Task[Any]] = {}
    at_close: list[bool] = []

    class Many(WebSocketHandler):
        async def on_open(self) -> None:
            for name in ("a", "b", "c"):
                tasks[name] = self.start_task(name, asyncio.sleep(3600))

        async def on_close(self) -> None:
            # Cancelled before on_close runs: they end while it waits.
            await asyncio.wait(tasks.values(), timeout=3)
            at_close.append(all(task.cancelled() for task in tasks.values()))

    async with client(Many).connect("/ws"):
        pass
    assert at_close == [True]


async def test_start_task_passes_args_kwargs_and_calls_the_callback() -> None:
    done: list[Any] = []

    class WithCallback(WebSocketHandler):
        async def on_open(self) -> None:
            self.start_task(
                "add",
                self.add,
                callback=lambda task: done.append(task.result()),
                args=[2],
                kwargs={"b": 3},
            )

        async def add(self, a: int, b: int) -> int:
            self.send({"sum": a + b})
            return a + b

    async with client(WithCallback).connect("/ws") as ws:
        assert await ws.receive_json() == {"sum": 5}
    assert done == [5]


async def test_a_finished_task_leaves_self_tasks() -> None:
    class Short(WebSocketHandler):
        async def on_open(self) -> None:
            await self.start_task("short", asyncio.sleep(0))
            self.send({"tasks": sorted(self.tasks)})

    async with client(Short).connect("/ws") as ws:
        assert await ws.receive_json() == {"tasks": []}


async def test_a_task_exception_goes_to_on_task_error() -> None:
    errors: list[BaseException] = []

    class Failing(WebSocketHandler):
        async def on_open(self) -> None:
            self.start_task("fail", self.fail)

        async def fail(self) -> None:
            raise ValueError("task broke")

        async def on_task_error(self, error: BaseException) -> None:
            errors.append(error)
            await self.send({"task_error": str(error)})

    async with client(Failing).connect("/ws") as ws:
        assert await ws.receive_json() == {"task_error": "task broke"}
        await ws.assert_nothing_received()  # the socket stays open
        assert ws.close_code is None
    assert [type(error) for error in errors] == [ValueError]


class FakeClock:
    """Stand-in for ``asyncio`` in ``django_ws.schedule``: time moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def get_running_loop(self) -> Any:
        return SimpleNamespace(time=lambda: self.now)

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(round(delay, 6))
        self.now += delay
        await asyncio.sleep(0)


async def test_sleep_loop_keeps_a_drift_free_schedule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each call starts one period after the previous start, however long it took."""
    clock = FakeClock()
    monkeypatch.setattr(django_ws.schedule, "asyncio", clock)
    calls: list[tuple[float, str, str]] = []

    class Ticker(WebSocketHandler):
        async def on_open(self) -> None:
            self.start_task("tick", self.sleep_loop(self.tick, 10, "a", label="b"))

        async def tick(self, first: str, label: str) -> None:
            calls.append((clock.now - 1000.0, first, label))
            clock.now += 3  # the work takes 3 of the 10 seconds
            if len(calls) == 4:
                self.send({"ticks": len(calls)})

    async with client(Ticker).connect("/ws") as ws:
        assert await ws.receive_json() == {"ticks": 4}
    assert calls[:4] == [
        (10.0, "a", "b"),
        (20.0, "a", "b"),
        (30.0, "a", "b"),
        (40.0, "a", "b"),
    ]
    assert clock.sleeps[:4] == [10.0, 7.0, 7.0, 7.0]  # one sleep per period


async def test_sleep_loop_skips_the_ticks_a_slow_call_missed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(django_ws.schedule, "asyncio", clock)
    calls: list[float] = []

    class Slow(WebSocketHandler):
        async def on_open(self) -> None:
            self.start_task("tick", self.sleep_loop(self.tick, 10))

        async def tick(self) -> None:
            calls.append(clock.now - 1000.0)
            clock.now += 25 if len(calls) == 1 else 1
            if len(calls) == 3:
                self.send({"done": True})

    async with client(Slow).connect("/ws") as ws:
        assert await ws.receive_json() == {"done": True}
    assert calls[:3] == [10.0, 40.0, 50.0]  # 20 and 30 were missed, not bunched up


async def test_start_ping_sends_the_time_every_ping_interval() -> None:
    class Pinging(WebSocketHandler):
        PING_INTERVAL = 0.02

        async def on_open(self) -> None:
            task = self.start_ping()
            assert self.tasks["ping"] is task

    async with client(Pinging).connect("/ws") as ws:
        pings = [await ws.receive_json(), await ws.receive_json()]
    for ping in pings:
        assert list(ping) == ["ping"]
        sent_at = datetime.fromisoformat(ping["ping"])
        assert sent_at.tzinfo is not None
        assert abs(timezone.now() - sent_at) < timedelta(minutes=1)
    assert pings[0]["ping"] < pings[1]["ping"]


def test_ping_interval_defaults_to_59_seconds() -> None:
    assert WebSocketHandler.PING_INTERVAL == 59


# Sync hooks -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_sync_hooks_run_in_a_thread_and_can_use_the_orm() -> None:
    loop_thread = threading.get_ident()
    threads: list[bool] = []

    class SyncORM(WebSocketHandler):
        def on_open(self) -> None:
            threads.append(threading.get_ident() != loop_thread)

        def on_message(self, data: Any) -> Any:
            threads.append(threading.get_ident() != loop_thread)
            User.objects.create_user(username=data["name"])
            self.send({"users": list(User.objects.values_list("username", flat=True))})
            return {"returned": data["name"]}

        def on_close(self) -> None:
            threads.append(threading.get_ident() != loop_thread)

    async with client(SyncORM).connect("/ws") as ws:
        await ws.send_json({"name": "alice"})
        assert await ws.receive_json() == {"users": ["alice"]}
        assert await ws.receive_json() == {"returned": "alice"}
    assert threads == [True, True, True]


async def test_a_sync_hook_can_send_then_close() -> None:
    class SyncClose(WebSocketHandler):
        def on_message(self, data: Any) -> None:
            self.send({"bye": data})
            self.close(4000, "done")

    async with client(SyncClose).connect("/ws") as ws:
        await ws.send_json("now")
        assert await ws.receive_json() == {"bye": "now"}
        assert await ws.receive_close() == 4000
        assert ws.close_reason == "done"


# Codecs -----------------------------------------------------------------------


async def test_json_codec_encodes_django_types() -> None:
    class Typed(WebSocketHandler):
        async def on_open(self) -> None:
            self.send(
                {
                    "when": datetime(
                        2024, 1, 2, 3, 4, 5, 600000, tzinfo=dt_timezone.utc
                    ),
                    "price": Decimal("1.50"),
                    "id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
                    "label": gettext_lazy("Hello"),
                    "text": "naïve ✓",
                }
            )

    async with client(Typed).connect("/ws") as ws:
        assert await ws.receive_text() == (
            '{"when":"2024-01-02T03:04:05.600Z","price":"1.50",'
            '"id":"12345678-1234-5678-1234-567812345678","label":"Hello",'
            '"text":"naïve ✓"}'
        )


def test_the_default_codec_is_json() -> None:
    assert isinstance(WebSocketHandler.codec, JSONCodec)


@pytest.mark.parametrize(
    "text",
    ['{"a":1}', ' {"a": [1, 2.5, null]}\n', '"x"', "NaN", "[]", '{"é":"\\u00e9"}'],
)
def test_json_codec_decodes_as_json_loads_does(text: str) -> None:
    assert repr(JSONCodec().decode(text)) == repr(json.loads(text))  # repr: nan != nan


@pytest.mark.parametrize(
    "text, error",
    [
        ("{", "Expecting property name"),
        ('{"a":1}x', "Extra data"),
        ("", "Expecting value"),
        ("[" * 100_000, "maximum recursion depth"),
    ],
)
def test_json_codec_reports_what_json_loads_reports(text: str, error: str) -> None:
    with pytest.raises(MessageDecodeError, match=error):
        JSONCodec().decode(text)


def test_json_codec_encodes_as_its_encoder_does() -> None:
    codec = JSONCodec()
    value = {"a": [1, 2.5, None, True, "naïve\n"], "b": {"c": -1e300}, "d": Decimal("2")}
    expected = DjangoJSONEncoder(separators=(",", ":"), ensure_ascii=False).encode(value)
    assert codec.encode(value) == expected
    assert codec.encode("top-level \"string\"") == '"top-level \\"string\\""'


def test_json_codec_still_refuses_circular_values() -> None:
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular reference"):
        JSONCodec().encode(looped)


def test_json_codec_keeps_an_encoder_that_overrides_encode() -> None:
    class Shouting(json.JSONEncoder):
        def encode(self, o: Any) -> str:
            return super().encode(o).upper()

    assert JSONCodec(Shouting).encode({"a": "b"}) == '{"A":"B"}'


async def test_text_codec_passes_text_through() -> None:
    class Plain(WebSocketHandler):
        codec = TextCodec()

        async def on_message(self, data: Any) -> Any:
            if isinstance(data, bytes):
                return data
            return data.upper()

    async with client(Plain).connect("/ws") as ws:
        await ws.send_text("not {json")
        assert await ws.receive_text() == "NOT {JSON"
        await ws.send_bytes(b"raw")
        assert await ws.receive_bytes() == b"raw"


async def test_text_codec_refuses_to_send_other_values() -> None:
    class Plain(WebSocketHandler):
        codec = TextCodec()

        async def on_message(self, data: Any) -> Any:
            return {"not": "text"}

    async with client(Plain).connect("/ws") as ws:
        await ws.send_text("hi")
        assert await ws.receive_close() == 1011


async def test_a_codec_that_encodes_bytes_sends_binary_frames() -> None:
    class Latin1Codec:
        def decode(self, text: str) -> Any:
            return text

        def encode(self, data: Any) -> bytes:
            return str(data).encode("latin-1")

    class Binary(WebSocketHandler):
        codec = Latin1Codec()

        async def on_message(self, data: Any) -> Any:
            return f"got {data}"

    async with client(Binary).connect("/ws") as ws:
        await ws.send_text("é")
        assert await ws.receive_bytes() == "got é".encode("latin-1")
