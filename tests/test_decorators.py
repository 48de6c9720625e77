"""The decorator DSL: function-style handlers compiled onto ``WebSocketHandler``.

Every test builds its routes in a private ``RouteRegistry`` and serves them with
``get_websocket_application(urlconf=None, registry=...)``, so no test sees another
test's routes. Behaviour shared by both styles runs twice, through the suite's
``form`` fixture: once against ``@ws_route`` functions and once against an
equivalent ``WebSocketHandler`` subclass with marked methods.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import threading
from collections.abc import AsyncIterator
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.urls import URLPattern, include, path

import django_ws
from django_ws import (
    TASK_DUPLICATE_STARTED,
    WebSocketHandler,
    background,
    get_websocket_application,
    on_close,
    on_message,
    on_open,
    periodic,
    use_middleware,
    ws_route,
)
from django_ws.decorators import RouteRegistry, routes
from django_ws.exceptions import DenyConnection
from django_ws.middleware import AuthAsyncMiddleware
from django_ws.testing import WebSocketTestClient

#: A period short enough for quick tests and long enough to tell ticks apart.
PERIOD = 0.2


def client(registry: RouteRegistry, urlconf: Any = None) -> WebSocketTestClient:
    """A test client serving ``registry``'s routes (after ``urlconf``'s, if given)."""
    return WebSocketTestClient(
        get_websocket_application(urlconf=urlconf, registry=registry)
    )


def ws_urls(*patterns: Any) -> ModuleType:
    """A ws urlconf module made in the test."""
    module = ModuleType("tests.test_decorators.ws_urls")
    module.urlpatterns = list(patterns)  # type: ignore[attr-defined]
    return module


def grid(starts: list[float], origin: float) -> list[int]:
    """Each start time as a whole number of periods after ``origin``.

    A run may start late on a busy machine (up to 3/4 of a period is allowed), but
    the event loop never wakes a sleep early.
    """
    return [math.floor((start - origin) / PERIOD + 0.25) for start in starts]


class FakeWebSocket(SimpleNamespace):
    """Enough of a handler to call hooks directly in a unit test."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(sent=[], kwargs=kwargs)

    def send(self, data: Any) -> None:
        self.sent.append(data)


# The four forms of the issue ---------------------------------------------------


async def test_form_a_a_plain_function_is_on_message_and_its_return_is_sent() -> None:
    reg = RouteRegistry()

    @ws_route("echo", registry=reg)
    async def echo(ws: Any, data: Any) -> Any:
        return data

    async with client(reg).connect("/echo") as ws:
        await ws.send_json({"text": "hi"})
        assert await ws.receive_json() == {"text": "hi"}
        await ws.send_json([1, 2])
        assert await ws.receive_json() == [1, 2]


@pytest.mark.parametrize("order", ["ws_route outermost", "on_message outermost"])
async def test_form_b_on_message_and_ws_route_stack_in_either_order(order: str) -> None:
    reg = RouteRegistry()

    async def shout(ws: Any, data: Any) -> None:
        ws.send({"loud": data["text"].upper()})

    if order == "ws_route outermost":
        ws_route("shout", registry=reg)(on_message(shout))
    else:
        on_message(ws_route("shout", registry=reg)(shout))

    async with client(reg).connect("/shout") as ws:
        await ws.send_json({"text": "hi"})
        assert await ws.receive_json() == {"loud": "HI"}
    assert [str(p.pattern) for p in reg.urlpatterns] == ["shout"]


async def test_form_c_one_route_collects_every_hook_with_url_kwargs() -> None:
    reg = RouteRegistry()
    events: list[Any] = []
    room = ws_route(
        "rooms/<slug:name>", name="room", middleware=[AuthAsyncMiddleware], registry=reg
    )

    async def source(name: str) -> AsyncIterator[dict[str, Any]]:
        for n in range(2):
            yield {"feed": n, "room": name}

    @room.on_open
    async def joined(ws: Any, name: str) -> None:
        await ws.send({"joined": name, "user": str(ws.request.user)})

    @room.on_message
    async def said(ws: Any, data: Any, name: str) -> Any:
        return {"said": data, "room": name}

    @room.on_message(type="typing")
    async def typing(ws: Any, data: Any, name: str) -> Any:
        return {"typing": name}

    @room.periodic(PERIOD)
    async def tick(ws: Any, name: str) -> Any:
        events.append(("tick", name))
        return {"tick": name}

    @room.background("feed")
    async def feed(ws: Any, name: str) -> AsyncIterator[Any]:
        async for item in source(name):
            yield item

    @room.on_close
    async def left(ws: Any, name: str) -> None:
        events.append(("left", name))

    pushed: list[Any] = []  # what the tasks sent, apart from the replies

    async def reply(ws: Any) -> Any:
        while True:
            message = await ws.receive_json()
            if "feed" not in message and "tick" not in message:
                return message
            pushed.append(message)

    async with client(reg).connect("/rooms/lobby") as ws:
        assert await ws.receive_json() == {"joined": "lobby", "user": "AnonymousUser"}
        await ws.send_json({"type": "typing"})
        assert await reply(ws) == {"typing": "lobby"}
        await ws.send_json("hello")
        assert await reply(ws) == {"said": "hello", "room": "lobby"}
        while len(pushed) < 3:
            pushed.append(await ws.receive_json())
    assert [m for m in pushed if "feed" in m] == [
        {"feed": 0, "room": "lobby"},
        {"feed": 1, "room": "lobby"},
    ]
    assert [m for m in pushed if "tick" in m] == [{"tick": "lobby"}]
    assert events[0] == ("tick", "lobby")
    assert events[-1] == ("left", "lobby")  # on_close, once, last


async def test_form_d_class_decorator_with_use_middleware_and_marked_methods() -> None:
    reg = RouteRegistry()

    @ws_route("ticker/<str:symbol>", registry=reg)
    @use_middleware(AuthAsyncMiddleware)
    class Ticker(WebSocketHandler):
        @periodic(PERIOD)
        async def push(self) -> None:
            self.send({"symbol": self.kwargs["symbol"]})

        @background("feed")
        async def feed(self) -> AsyncIterator[Any]:
            yield {"user": str(self.request.user)}

    assert Ticker.middleware == (AuthAsyncMiddleware,)
    async with client(reg).connect("/ticker/ACME") as ws:
        assert await ws.receive_json() == {"user": "AnonymousUser"}
        assert await ws.receive_json() == {"symbol": "ACME"}
        assert await ws.receive_json() == {"symbol": "ACME"}


# Decorated functions stay functions ------------------------------------------


DECORATIONS = {
    "ws_route": lambda: ws_route("a", registry=RouteRegistry()),
    "on_open": lambda: on_open,
    "on_message": lambda: on_message,
    "on_message(type)": lambda: on_message(type="chat"),
    "periodic": lambda: periodic(5),
    "background": lambda: background("feed"),
    "route.on_message": lambda: ws_route("a", registry=RouteRegistry()).on_message,
    "route.on_open": lambda: ws_route("a", registry=RouteRegistry()).on_open,
    "route.periodic": lambda: ws_route("a", registry=RouteRegistry()).periodic(5),
}


@pytest.mark.parametrize("decoration", DECORATIONS)
@pytest.mark.parametrize("sync", [False, True], ids=["async def", "def"])
def test_decorated_functions_keep_name_docstring_signature_and_kind(
    decoration: str, sync: bool
) -> None:
    if sync:

        def hook(ws: Any, data: Any = None) -> Any:
            """Say why."""

    else:

        async def hook(ws: Any, data: Any = None) -> Any:  # type: ignore[misc]
            """Say why."""

    decorated = DECORATIONS[decoration]()(hook)
    assert decorated.__name__ == "hook"
    assert decorated.__qualname__ == hook.__qualname__
    assert decorated.__module__ == __name__
    assert decorated.__doc__ == "Say why."
    assert inspect.signature(decorated) == inspect.signature(hook)
    assert inspect.iscoroutinefunction(decorated) is not sync
    assert inspect.unwrap(decorated) is hook


def test_an_async_generator_stays_an_async_generator_function() -> None:
    @background("feed")
    async def feed(ws: Any) -> AsyncIterator[int]:
        yield 1

    assert inspect.isasyncgenfunction(feed)
    assert not inspect.iscoroutinefunction(feed)


async def test_decorated_functions_stay_directly_callable() -> None:
    reg = RouteRegistry()

    @ws_route("echo", registry=reg)
    async def echo(ws: Any, data: Any) -> Any:
        return data

    @ws_route("shout", registry=reg)
    @on_message
    async def shout(ws: Any, data: Any) -> None:
        ws.send({"loud": data["text"].upper()})

    room = ws_route("rooms/<slug:name>", registry=reg)

    @room.on_message(type="say")
    async def say(ws: Any, data: Any, name: str) -> Any:
        return {"room": name, "text": data["text"]}

    @room.background("feed")
    async def feed(ws: Any, name: str) -> AsyncIterator[Any]:
        for n in range(2):
            yield {name: n}

    @room.periodic(5)
    def tick(ws: Any, name: str) -> Any:
        ws.send({"tick": name})

    ws = FakeWebSocket(name="lobby")
    assert await echo(ws, {"a": 1}) == {"a": 1}
    await shout(ws, {"text": "hi"})
    assert await say(ws, {"text": "yo"}, name="lobby") == {
        "room": "lobby",
        "text": "yo",
    }
    assert [item async for item in feed(ws, name="lobby")] == [
        {"lobby": 0},
        {"lobby": 1},
    ]
    tick(ws, "lobby")
    assert ws.sent == [{"loud": "HI"}, {"tick": "lobby"}]


async def test_a_decorator_of_your_own_under_ws_route_still_runs() -> None:
    calls: list[str] = []

    def traced(function: Any) -> Any:
        @functools.wraps(function)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            calls.append(function.__name__)
            return await function(*args, **kwargs)

        return wrapper

    reg = RouteRegistry()
    room = ws_route("rooms/<slug:name>", registry=reg)

    @room.on_message
    @traced
    async def said(ws: Any, data: Any, name: str) -> Any:
        return {"said": data, "room": name}

    async with client(reg).connect("/rooms/lobby") as ws:
        await ws.send_json("hi")
        assert await ws.receive_json() == {"said": "hi", "room": "lobby"}
    assert calls == ["said"]


async def test_marked_methods_stay_callable_on_the_class_and_on_instances() -> None:
    class Ticker(WebSocketHandler):
        @periodic(5)
        async def push(self) -> Any:
            return {"symbol": self.kwargs["symbol"]}

    fake = FakeWebSocket(symbol="ACME")
    assert await Ticker.push(fake) == {"symbol": "ACME"}
    scope = {"type": "websocket", "path": "/"}
    handler = Ticker(scope, None, None, kwargs={"symbol": "XYZ"})  # type: ignore[arg-type]
    assert await handler.push() == {"symbol": "XYZ"}


# URL kwargs ----------------------------------------------------------------------


async def test_url_kwargs_arrive_by_name_or_as_var_kwargs_and_on_ws_kwargs() -> None:
    reg = RouteRegistry()
    room = ws_route("rooms/<slug:name>/<int:page>", registry=reg)

    @room.on_open
    async def by_name(ws: Any, name: str) -> None:
        await ws.send({"by_name": name})

    @room.on_message
    async def all_of_them(ws: Any, data: Any, **kwargs: Any) -> Any:
        return {"kwargs": kwargs}

    @room.on_message(type="none")
    async def none_of_them(ws: Any, data: Any) -> Any:
        return {"ws.kwargs": ws.kwargs}

    async with client(reg).connect("/rooms/lobby/2") as ws:
        assert await ws.receive_json() == {"by_name": "lobby"}
        await ws.send_json({})
        assert await ws.receive_json() == {"kwargs": {"name": "lobby", "page": 2}}
        await ws.send_json({"type": "none"})
        assert await ws.receive_json() == {"ws.kwargs": {"name": "lobby", "page": 2}}


async def test_url_kwargs_are_on_ws_kwargs_in_both_forms(form: str) -> None:
    reg = RouteRegistry()
    if form == "function":

        @ws_route("rooms/<slug:name>", registry=reg)
        async def room(ws: Any, data: Any) -> Any:
            return ws.kwargs

    else:

        @ws_route("rooms/<slug:name>", registry=reg)
        class Room(WebSocketHandler):
            async def on_message(self, data: Any) -> Any:
                return self.kwargs

    async with client(reg).connect("/rooms/lobby") as ws:
        await ws.send_json(None)
        assert await ws.receive_json() == {"name": "lobby"}


# Typed dispatch ----------------------------------------------------------------


def typed_routes(form: str, *, untyped: bool, type_key: str = "type") -> RouteRegistry:
    """A ``join`` and a ``leave`` hook, and an untyped one if ``untyped``."""
    reg = RouteRegistry()
    if form == "function":
        room = ws_route("chat", registry=reg, message_type_key=type_key)

        @room.on_message(type="join")
        async def join(ws: Any, data: Any) -> Any:
            return {"joined": data["who"]}

        @room.on_message(type="leave")
        async def leave(ws: Any, data: Any) -> Any:
            return {"left": data["who"]}

        if untyped:

            @room.on_message
            async def anything(ws: Any, data: Any) -> Any:
                return {"untyped": data}

    else:

        class Chat(WebSocketHandler):
            message_type_key = type_key

            @on_message(type="join")
            async def join(self, data: Any) -> Any:
                return {"joined": data["who"]}

            @on_message(type="leave")
            async def leave(self, data: Any) -> Any:
                return {"left": data["who"]}

        if untyped:

            class Chat(Chat):  # type: ignore[no-redef]
                async def on_message(self, data: Any) -> Any:
                    return {"untyped": data}

        ws_route("chat", registry=reg)(Chat)
    return reg


async def test_json_objects_are_dispatched_on_their_type(form: str) -> None:
    async with client(typed_routes(form, untyped=True)).connect("/chat") as ws:
        await ws.send_json({"type": "join", "who": "ann"})
        assert await ws.receive_json() == {"joined": "ann"}
        await ws.send_json({"type": "leave", "who": "ann"})
        assert await ws.receive_json() == {"left": "ann"}


async def test_other_messages_fall_back_to_the_untyped_hook(form: str) -> None:
    async with client(typed_routes(form, untyped=True)).connect("/chat") as ws:
        await ws.send_json({"type": "wave", "who": "ann"})
        assert await ws.receive_json() == {"untyped": {"type": "wave", "who": "ann"}}
        await ws.send_json({"who": "ann"})
        assert await ws.receive_json() == {"untyped": {"who": "ann"}}
        await ws.send_json("join")
        assert await ws.receive_json() == {"untyped": "join"}


async def test_an_unknown_type_gets_an_error_frame_and_the_socket_stays_open(
    form: str,
) -> None:
    async with client(typed_routes(form, untyped=False)).connect("/chat") as ws:
        await ws.send_json({"type": "wave"})
        assert await ws.receive_json() == {
            "error": "unknown message type",
            "type": "wave",
        }
        await ws.send_json(["not", "an", "object"])
        assert await ws.receive_json() == {
            "error": "unknown message type",
            "type": None,
        }
        await ws.send_json({"type": "join", "who": "ann"})
        assert await ws.receive_json() == {"joined": "ann"}
        assert ws.close_code is None


async def test_the_type_key_is_the_message_type_key_class_attribute(form: str) -> None:
    async with client(typed_routes(form, untyped=False, type_key="kind")).connect(
        "/chat"
    ) as ws:
        await ws.send_json({"kind": "join", "who": "ann"})
        assert await ws.receive_json() == {"joined": "ann"}
        await ws.send_json({"type": "join", "who": "ann"})
        assert await ws.receive_json() == {
            "error": "unknown message type",
            "kind": None,
        }


# Lifecycle marks on handler classes --------------------------------------------------


async def test_lifecycle_marks_on_methods_of_any_name_become_the_hooks() -> None:
    events: list[str] = []

    class Greeter(WebSocketHandler):
        @on_open
        async def greet(self) -> None:
            await self.send({"hello": self.kwargs["name"]})

        @on_message
        async def answer(self, data: Any) -> Any:
            return {"answer": data}

        @on_close
        def bye(self) -> None:
            events.append("bye")

    reg = RouteRegistry()
    ws_route("greet/<str:name>", registry=reg)(Greeter)
    async with client(reg).connect("/greet/ann") as ws:
        assert await ws.receive_json() == {"hello": "ann"}
        await ws.send_json(1)
        assert await ws.receive_json() == {"answer": 1}
    assert events == ["bye"]


# Periodic ----------------------------------------------------------------------


def periodic_routes(
    form: str,
    run: Any,
    *,
    immediate: bool = False,
    opened: Any = None,
    errors: Any = None,
) -> RouteRegistry:
    """A route whose periodic hook is ``await run(ws)`` every ``PERIOD``.

    ``opened(ws)`` runs in ``on_open``; ``errors`` (a list) collects what the
    class form's ``on_task_error`` receives.
    """
    reg = RouteRegistry()
    if form == "function":
        route = ws_route("tick", registry=reg)

        @route.on_open
        async def start(ws: Any) -> None:
            if opened is not None:
                opened(ws)

        @route.periodic(PERIOD, immediate=immediate)
        async def tick(ws: Any) -> Any:
            return await run(ws)

    else:

        @ws_route("tick", registry=reg)
        class Tick(WebSocketHandler):
            async def on_open(self) -> None:
                if opened is not None:
                    opened(self)

            @periodic(PERIOD, immediate=immediate)
            async def tick(self) -> Any:
                return await run(self)

            def on_task_error(self, error: BaseException) -> None:
                if errors is not None:
                    errors.append(error)
                else:
                    super().on_task_error(error)

    return reg


@pytest.mark.parametrize("immediate", [False, True])
async def test_periodic_first_runs_one_period_after_open_or_at_once(
    form: str, immediate: bool
) -> None:
    loop = asyncio.get_running_loop()
    times: dict[str, float] = {}
    ran = asyncio.Event()

    async def run(ws: Any) -> None:
        times.setdefault("run", loop.time())
        ran.set()

    reg = periodic_routes(
        form,
        run,
        immediate=immediate,
        opened=lambda ws: times.setdefault("open", loop.time()),
    )
    async with client(reg).connect("/tick"):
        await asyncio.wait_for(ran.wait(), 3)
    assert grid([times["run"]], times["open"]) == [0 if immediate else 1]


async def test_periodic_runs_on_a_fixed_grid_and_never_overlaps_itself(
    form: str,
) -> None:
    """The first run takes 2.5 periods: the missed ticks are skipped, not bunched.

    The others take 0.4 of a period each; a schedule that slept one period after
    each run would drift off the grid by then.
    """
    loop = asyncio.get_running_loop()
    opened_at: list[float] = []
    starts: list[float] = []
    running = 0
    most_running = 0
    done = asyncio.Event()

    async def run(ws: Any) -> None:
        nonlocal running, most_running
        starts.append(loop.time())
        running += 1
        most_running = max(most_running, running)
        await asyncio.sleep(PERIOD * (2.5 if len(starts) == 1 else 0.4))
        running -= 1
        if len(starts) == 4:
            done.set()

    reg = periodic_routes(form, run, opened=lambda ws: opened_at.append(loop.time()))
    async with client(reg).connect("/tick"):
        await asyncio.wait_for(done.wait(), 5)
    assert grid(starts, opened_at[0]) == [1, 4, 5, 6]
    assert most_running == 1


async def test_a_non_none_periodic_result_is_sent(form: str) -> None:
    count = 0

    async def run(ws: Any) -> Any:
        nonlocal count
        count += 1
        return None if count == 1 else {"count": count}

    async with client(periodic_routes(form, run)).connect("/tick") as ws:
        assert await ws.receive_json() == {"count": 2}
        assert await ws.receive_json() == {"count": 3}


async def test_a_failing_run_goes_to_on_task_error_and_the_schedule_continues() -> None:
    errors: list[BaseException] = []
    count = 0

    async def run(ws: Any) -> Any:
        nonlocal count
        count += 1
        if count == 1:
            raise ValueError("first run fails")
        return {"count": count}

    async with client(periodic_routes("class", run, errors=errors)).connect(
        "/tick"
    ) as ws:
        assert await ws.receive_json() == {"count": 2}
        assert ws.close_code is None
    assert [repr(e) for e in errors] == ["ValueError('first run fails')"]


async def test_a_failing_run_of_a_function_route_is_logged_and_the_schedule_continues(
    caplog: pytest.LogCaptureFixture,
) -> None:
    count = 0

    async def run(ws: Any) -> Any:
        nonlocal count
        count += 1
        if count == 1:
            raise ValueError("first run fails")
        return {"count": count}

    with caplog.at_level(logging.ERROR, logger="django_ws"):
        async with client(periodic_routes("function", run)).connect("/tick") as ws:
            assert await ws.receive_json() == {"count": 2}
    failures = [
        r
        for r in caplog.records
        if r.getMessage() == "Task of <periodic_routes.<locals>.start '/tick'> failed"
    ]
    assert [repr(r.exc_info[1]) for r in failures if r.exc_info] == [
        "ValueError('first run fails')"
    ]


async def test_periodic_stops_when_the_socket_closes(form: str) -> None:
    runs: list[asyncio.Task[Any]] = []
    ran = asyncio.Event()

    async def run(ws: Any) -> None:
        runs.append(asyncio.current_task())  # type: ignore[arg-type]
        ran.set()

    async with client(periodic_routes(form, run, immediate=True)).connect("/tick"):
        await asyncio.wait_for(ran.wait(), 3)
    assert len(runs) == 1
    done, _ = await asyncio.wait({runs[0]}, timeout=3)
    assert runs[0] in done and runs[0].cancelled()
    assert asyncio.all_tasks() == {asyncio.current_task()}  # no loop left to run it


# Background ----------------------------------------------------------------------


def background_routes(
    form: str, feed: Any, *, on_message_: Any = None
) -> RouteRegistry:
    """A route with ``feed(ws)`` as background task ``"feed"``."""
    reg = RouteRegistry()
    if form == "function":
        route = ws_route("feed", registry=reg)
        route.background("feed")(feed)
        if on_message_ is not None:
            route.on_message(on_message_)
    else:

        @ws_route("feed", registry=reg)
        class Feed(WebSocketHandler):
            work = background("feed")(feed)

            async def on_message(self, data: Any) -> Any:
                if on_message_ is not None:
                    return await on_message_(self, data)
                return None

    return reg


async def test_an_async_generator_streams_each_yielded_value(form: str) -> None:
    async def feed(ws: Any) -> AsyncIterator[Any]:
        for n in range(3):
            yield {"n": n}

    async with client(background_routes(form, feed)).connect("/feed") as ws:
        assert [await ws.receive_json() for _ in range(3)] == [
            {"n": 0},
            {"n": 1},
            {"n": 2},
        ]
        await ws.assert_nothing_received()


async def test_a_background_coroutine_result_is_sent(form: str) -> None:
    async def feed(ws: Any) -> Any:
        return {"done": True}

    async with client(background_routes(form, feed)).connect("/feed") as ws:
        assert await ws.receive_json() == {"done": True}


async def test_background_runs_through_start_task_with_its_duplicate_rule(
    form: str,
) -> None:
    events: list[Any] = []

    async def feed(ws: Any) -> AsyncIterator[Any]:
        yield {"task": sorted(ws.tasks)}
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError as cancelled:
            events.append(cancelled.args)
            raise

    async def restart(ws: Any, data: Any) -> None:
        async def replacement() -> None:
            await ws.send({"replaced": True})

        ws.start_task("feed", replacement)

    async with client(background_routes(form, feed, on_message_=restart)).connect(
        "/feed"
    ) as ws:
        assert await ws.receive_json() == {"task": ["feed"]}
        await ws.send_json("restart")
        assert await ws.receive_json() == {"replaced": True}
    assert events == [(TASK_DUPLICATE_STARTED,)]


async def test_background_is_cancelled_when_the_socket_closes(form: str) -> None:
    events: list[str] = []
    stopped = asyncio.Event()

    async def feed(ws: Any) -> AsyncIterator[Any]:
        try:
            while True:
                yield {"tick": True}
                await asyncio.sleep(PERIOD)
        finally:
            events.append("stopped")
            stopped.set()

    async with client(background_routes(form, feed)).connect("/feed") as ws:
        assert await ws.receive_json() == {"tick": True}
    await asyncio.wait_for(stopped.wait(), 3)
    assert events == ["stopped"]


# Sync hooks ------------------------------------------------------------------------


def sync_routes(form: str, loop_thread: int, threads: list[bool]) -> RouteRegistry:
    """Sync ``def`` hooks that record whether they ran off the loop's thread."""
    reg = RouteRegistry()

    def opened(ws: Any) -> None:
        threads.append(threading.get_ident() != loop_thread)
        ws.send({"hello": ws.kwargs["name"]})

    def signup(ws: Any, data: Any) -> Any:
        threads.append(threading.get_ident() != loop_thread)
        User.objects.create_user(username=data["username"])
        ws.send({"users": list(User.objects.values_list("username", flat=True))})
        return {"created": data["username"]}

    def count(ws: Any) -> Any:
        threads.append(threading.get_ident() != loop_thread)
        return {"count": User.objects.count()}

    if form == "function":
        route = ws_route("sync/<str:name>", registry=reg)
        route.on_open(opened)
        route.on_message(signup)
        route.background("count")(count)
    else:

        @ws_route("sync/<str:name>", registry=reg)
        class Sync(WebSocketHandler):
            on_open = opened
            on_message = signup
            counter = background("count")(count)

    return reg


@pytest.mark.django_db
def test_sync_hooks_run_in_a_worker_thread_use_the_orm_and_send(form: str) -> None:
    threads: list[bool] = []

    async def scenario() -> None:
        reg = sync_routes(form, threading.get_ident(), threads)
        async with client(reg).connect("/sync/ann") as ws:
            assert await ws.receive_json() == {"hello": "ann"}
            assert await ws.receive_json() == {"count": 0}
            await ws.send_json({"username": "ann"})
            assert await ws.receive_json() == {"users": ["ann"]}
            assert await ws.receive_json() == {"created": "ann"}

    # async_to_sync runs the thread-sensitive sync hooks in this thread, inside
    # the test's transaction, the way Django runs sync code under ASGI.
    async_to_sync(scenario)()
    assert threads == [True, True, True]
    assert list(User.objects.values_list("username", flat=True)) == ["ann"]


# Middleware ----------------------------------------------------------------------


class Trail:
    """Append ``label`` to ``ws.trail`` on the way in."""

    label = ""

    def __init__(self, next: Any) -> None:
        self.next = next

    async def __call__(self, ws: Any) -> Any:
        ws.trail = [*getattr(ws, "trail", []), self.label]
        return await self.next(ws)


class SettingsTrail(Trail):
    label = "WS_MIDDLEWARE"


class RouteTrail(Trail):
    label = "ws_route(middleware=...)"


class ClassTrail(Trail):
    label = "class middleware"


class UseTrail(Trail):
    label = "use_middleware"


class Refuse:
    def __init__(self, next: Any) -> None:
        self.next = next

    async def __call__(self, ws: Any) -> Any:
        raise DenyConnection(403)


async def test_function_route_middleware_runs_inside_ws_middleware(
    settings: Any,
) -> None:
    settings.WS_MIDDLEWARE = ["tests.test_decorators.SettingsTrail"]
    reg = RouteRegistry()

    @ws_route("trail", middleware=[RouteTrail], registry=reg)
    @on_open
    async def trail(ws: Any) -> None:
        await ws.send(ws.trail)

    async with client(reg).connect("/trail") as ws:
        assert await ws.receive_json() == ["WS_MIDDLEWARE", "ws_route(middleware=...)"]


@pytest.mark.parametrize("order", ["ws_route outermost", "use_middleware outermost"])
async def test_class_route_middleware_order_is_settings_route_class_then_use_middleware(
    settings: Any, order: str
) -> None:
    settings.WS_MIDDLEWARE = ["tests.test_decorators.SettingsTrail"]
    reg = RouteRegistry()

    class Trailed(WebSocketHandler):
        middleware = [ClassTrail]

        async def on_open(self) -> None:
            await self.send(self.trail)  # type: ignore[attr-defined]

    register = ws_route("trail", middleware=[RouteTrail], registry=reg)
    if order == "ws_route outermost":
        register(use_middleware(UseTrail)(Trailed))
    else:
        use_middleware(UseTrail)(register(Trailed))

    async with client(reg).connect("/trail") as ws:
        assert await ws.receive_json() == [
            "WS_MIDDLEWARE",
            "ws_route(middleware=...)",
            "class middleware",
            "use_middleware",
        ]


async def test_route_middleware_affects_only_its_route(form: str) -> None:
    reg = RouteRegistry()

    @ws_route("open", registry=reg)
    async def open_(ws: Any, data: Any) -> Any:
        return data

    if form == "function":

        @ws_route("guarded", middleware=[Refuse], registry=reg)
        async def guarded(ws: Any, data: Any) -> Any:
            return data

    else:

        @ws_route("guarded", registry=reg)
        @use_middleware(Refuse)
        class Guarded(WebSocketHandler):
            pass

    ws_client = client(reg)
    async with ws_client.connect("/guarded") as ws:
        assert not ws.accepted
        assert ws.status == 403
    async with ws_client.connect("/open") as ws:
        await ws.send_json("still open")
        assert await ws.receive_json() == "still open"


# Compiled handlers and the registry ------------------------------------------------


def test_a_function_route_compiles_into_a_handler_subclass_named_after_it() -> None:
    reg = RouteRegistry()
    room = ws_route("rooms/<slug:name>", registry=reg)

    @room.on_open
    async def joined(ws: Any, name: str) -> None:
        """Welcome the newcomer."""

    @room.on_message
    async def said(ws: Any, data: Any, name: str) -> None: ...

    handler = room.handler_class
    assert issubclass(handler, WebSocketHandler)
    assert handler.__name__ == "joined"
    assert handler.__module__ == __name__
    assert handler.__qualname__ == joined.__qualname__
    assert handler.__doc__ == "Welcome the newcomer."
    assert reg.urlpatterns[0].callback is handler
    assert room.handler_class is handler  # compiled once


def test_a_class_route_is_served_by_the_class_itself() -> None:
    reg = RouteRegistry()

    @ws_route("ticker", registry=reg)
    class Ticker(WebSocketHandler):
        pass

    assert reg.urlpatterns[0].callback is Ticker


def test_registry_urlpatterns_is_an_explicit_list_of_django_patterns() -> None:
    reg = RouteRegistry()

    @ws_route("echo", name="echo", registry=reg)
    async def echo(ws: Any, data: Any) -> Any:
        return data

    @ws_route(r"^raw/(?P<n>[0-9]+)$", registry=reg)
    class Raw(WebSocketHandler):
        pass

    patterns = reg.urlpatterns
    assert type(patterns) is list
    assert all(type(p) is URLPattern for p in patterns)
    assert [(str(p.pattern), p.name) for p in patterns] == [
        ("echo", "echo"),
        ("^raw/(?P<n>[0-9]+)$", None),
    ]
    assert len(reg) == 2
    assert [route.route for route in reg] == ["echo", r"^raw/(?P<n>[0-9]+)$"]


async def test_registry_urlpatterns_can_be_included_in_a_ws_urlconf() -> None:
    reg = RouteRegistry()

    @ws_route("echo", registry=reg)
    async def echo(ws: Any, data: Any) -> Any:
        return data

    ws_client = client(
        RouteRegistry(), urlconf=ws_urls(path("v1/", include(reg.urlpatterns)))
    )
    async with ws_client.connect("/v1/echo") as ws:
        await ws.send_json("hi")
        assert await ws.receive_json() == "hi"
    async with ws_client.connect("/echo") as ws:
        assert ws.status == 404


async def test_a_decorated_function_can_be_placed_in_ws_urls_with_path() -> None:
    reg = RouteRegistry()

    @ws_route("echo", registry=reg)
    async def echo(ws: Any, data: Any) -> Any:
        return {"echo": data, "path": ws.scope["path"]}

    ws_client = client(RouteRegistry(), urlconf=ws_urls(path("legacy/echo", echo)))
    async with ws_client.connect("/legacy/echo") as ws:
        await ws.send_json("hi")
        assert await ws.receive_json() == {"echo": "hi", "path": "/legacy/echo"}


async def test_ws_urls_patterns_are_tried_before_decorated_routes() -> None:
    reg = RouteRegistry()

    @ws_route("echo", registry=reg)
    async def echo(ws: Any, data: Any) -> Any:
        return {"from": "decorated"}

    @ws_route("only-decorated", registry=reg)
    async def only_decorated(ws: Any, data: Any) -> Any:
        return {"from": "decorated"}

    class Echo(WebSocketHandler):
        async def on_message(self, data: Any) -> Any:
            return {"from": "ws_urls"}

    ws_client = client(reg, urlconf=ws_urls(path("echo", Echo)))
    for url, answer in [("/echo", "ws_urls"), ("/only-decorated", "decorated")]:
        async with ws_client.connect(url) as ws:
            await ws.send_json(None)
            assert await ws.receive_json() == {"from": answer}


def test_named_routes_reverse_with_and_without_a_namespace() -> None:
    reg = RouteRegistry()
    room = ws_route("rooms/<slug:name>", name="room", registry=reg)

    @room.on_message
    async def said(ws: Any, data: Any) -> None: ...

    urlconf = ws_urls(path("chat/", include((reg.urlpatterns, "chat"))))
    router = get_websocket_application(urlconf=urlconf, registry=reg).router
    assert router.reverse("room", kwargs={"name": "lobby"}) == "/rooms/lobby"
    assert router.reverse("chat:room", kwargs={"name": "lobby"}) == "/chat/rooms/lobby"


@pytest.fixture
def project_route(settings: Any) -> Any:
    """A route in the project-wide registry, removed after the test.

    ``ROOT_URLCONF`` points at a package with no ``ws_urls`` sibling.
    """
    settings.ROOT_URLCONF = "tests.e2e.dsl_app.urls"
    route = ws_route("test-decorators/rooms/<slug:name>", name="test-decorators-room")

    @route.on_message
    async def said(ws: Any, data: Any) -> Any:
        return {"room": ws.kwargs["name"]}

    yield route
    routes.unregister(route)


def test_django_ws_reverse_finds_decorated_routes(project_route: Any) -> None:
    assert (
        django_ws.reverse("test-decorators-room", kwargs={"name": "lobby"})
        == "/test-decorators/rooms/lobby"
    )


async def test_without_a_ws_urls_module_decorated_routes_alone_serve(
    project_route: Any,
) -> None:
    async with WebSocketTestClient().connect("/test-decorators/rooms/lobby") as ws:
        await ws.send_json(None)
        assert await ws.receive_json() == {"room": "lobby"}
