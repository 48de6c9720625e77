"""Misuse of the decorator DSL fails when the decorator runs, at import.

Each error is ``ImproperlyConfigured`` and names the function (or class) and what
to change; the tests pin the whole message, since it is the user interface.
"""

from __future__ import annotations

import importlib
import math
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ws import (
    WebSocketHandler,
    background,
    on_message,
    on_open,
    periodic,
    use_middleware,
    ws_route,
)
from django_ws.decorators import RouteRegistry
from django_ws.decorators.route import OPTIONS

HERE = "tests.test_decorator_errors"


def message(error: pytest.ExceptionInfo[ImproperlyConfigured]) -> str:
    return str(error.value)


# Paths and hooks registered twice -----------------------------------------------


def test_the_same_path_registered_twice() -> None:
    reg = RouteRegistry()

    @ws_route("echo", registry=reg)
    async def echo(ws: Any, data: Any) -> Any: ...

    with pytest.raises(ImproperlyConfigured) as error:

        @ws_route("echo", registry=reg)
        async def other(ws: Any, data: Any) -> Any: ...

    assert message(error) == (
        "The WebSocket path 'echo' is registered twice: by "
        f"{HERE}.test_the_same_path_registered_twice.<locals>.echo and by "
        f"{HERE}.test_the_same_path_registered_twice.<locals>.other. Give one of them "
        "another path, or make the second a hook of the first route "
        "(room = ws_route(...); @room.on_message ...)."
    )
    assert [str(p.pattern) for p in reg.urlpatterns] == ["echo"]


def test_the_same_path_registered_twice_by_a_class() -> None:
    reg = RouteRegistry()

    @ws_route("ticker", registry=reg)
    class Ticker(WebSocketHandler):
        pass

    class Other(WebSocketHandler):
        pass

    with pytest.raises(ImproperlyConfigured) as error:
        ws_route("ticker", registry=reg)(Other)

    assert message(error) == (
        "The WebSocket path 'ticker' is registered twice: by "
        f"{HERE}.test_the_same_path_registered_twice_by_a_class.<locals>.Ticker and by "
        f"{HERE}.test_the_same_path_registered_twice_by_a_class.<locals>.Other. Give "
        "one of them another path, or make the second a hook of the first route "
        "(room = ws_route(...); @room.on_message ...)."
    )
    assert Other.middleware == ()  # left untouched


def test_two_untyped_on_message_hooks_on_one_route() -> None:
    room = ws_route("room", registry=RouteRegistry())

    @room.on_message
    async def said(ws: Any, data: Any) -> None: ...

    with pytest.raises(ImproperlyConfigured) as error:

        @room.on_message
        async def also_said(ws: Any, data: Any) -> None: ...

    where = f"{HERE}.test_two_untyped_on_message_hooks_on_one_route.<locals>"
    assert message(error) == (
        f"ws_route('room') has two on_message hooks: {where}.said and "
        f"{where}.also_said. Keep one, or give them different message types with "
        "@on_message(type=...)."
    )


def test_two_hooks_for_one_message_type() -> None:
    room = ws_route("room", registry=RouteRegistry())

    @room.on_message(type="chat")
    async def chat(ws: Any, data: Any) -> None: ...

    with pytest.raises(ImproperlyConfigured) as error:

        @room.on_message(type="chat")
        async def chat_again(ws: Any, data: Any) -> None: ...

    where = f"{HERE}.test_two_hooks_for_one_message_type.<locals>"
    assert message(error) == (
        f"ws_route('room') has two on_message(type='chat') hooks: {where}.chat and "
        f"{where}.chat_again. Keep one, or give them different message types with "
        "@on_message(type=...)."
    )


def test_two_on_open_hooks_on_one_route() -> None:
    room = ws_route("room", registry=RouteRegistry())

    @room.on_open
    async def first(ws: Any) -> None: ...

    with pytest.raises(ImproperlyConfigured) as error:

        @room.on_open
        async def second(ws: Any) -> None: ...

    where = f"{HERE}.test_two_on_open_hooks_on_one_route.<locals>"
    assert message(error) == (
        f"ws_route('room') has two on_open hooks: {where}.first and {where}.second. "
        "Keep one."
    )


def test_two_background_tasks_with_one_id() -> None:
    room = ws_route("room", registry=RouteRegistry())

    @room.background("feed")
    async def feed(ws: Any) -> None: ...

    with pytest.raises(ImproperlyConfigured) as error:

        @room.background("feed")
        async def other_feed(ws: Any) -> None: ...

    where = f"{HERE}.test_two_background_tasks_with_one_id.<locals>"
    assert message(error) == (
        f"ws_route('room') has two background('feed') hooks: {where}.feed and "
        f"{where}.other_feed. Keep one, or give them different task ids."
    )


def test_two_methods_marked_for_one_lifecycle_hook_in_a_class() -> None:
    with pytest.raises(ImproperlyConfigured) as error:

        class Greeter(WebSocketHandler):
            @on_open
            async def greet(self) -> None: ...

            # Below the decorator: above it, the name on_open would be this method.
            async def on_open(self) -> None: ...

    assert message(error) == (
        f"{HERE}.test_two_methods_marked_for_one_lifecycle_hook_in_a_class.<locals>."
        "Greeter has two on_open hooks: on_open and greet (marked @on_open). Keep one."
    )


# Periodic and background options ---------------------------------------------------


@pytest.mark.parametrize("seconds", [0, -1, 0.0, math.inf, math.nan, "5", True, None])
@pytest.mark.parametrize("where", ["mark", "route"])
def test_a_period_that_is_not_a_positive_number(seconds: Any, where: str) -> None:
    decorator = (
        periodic
        if where == "mark"
        else ws_route("tick", registry=RouteRegistry()).periodic
    )
    with pytest.raises(ImproperlyConfigured) as error:

        @decorator(seconds)
        async def tick(ws: Any) -> None: ...

    assert message(error) == (
        f"periodic(seconds) on {HERE}.test_a_period_that_is_not_a_positive_number."
        f"<locals>.tick needs a positive number of seconds, got {seconds!r}. Write "
        "@periodic(5) for every five seconds."
    )


@pytest.mark.parametrize("where", ["mark", "route"])
def test_periodic_without_a_period(where: str) -> None:
    decorator = (
        periodic
        if where == "mark"
        else ws_route("tick", registry=RouteRegistry()).periodic
    )
    with pytest.raises(ImproperlyConfigured) as error:

        @decorator()
        async def tick(ws: Any) -> None: ...

    assert message(error) == (
        f"periodic(seconds) on {HERE}.test_periodic_without_a_period.<locals>.tick "
        "needs a positive number of seconds, got None. Write @periodic(5) for every "
        "five seconds."
    )


@pytest.mark.parametrize("where", ["mark", "route"])
def test_a_bare_periodic(where: str) -> None:
    decorator = (
        periodic
        if where == "mark"
        else ws_route("tick", registry=RouteRegistry()).periodic
    )
    with pytest.raises(ImproperlyConfigured) as error:

        @decorator  # type: ignore[arg-type]
        async def tick(ws: Any) -> None: ...

    assert message(error) == (
        "periodic needs a period: write @periodic(5) above "
        f"{HERE}.test_a_bare_periodic.<locals>.tick, not a bare @periodic."
    )


def test_periodic_immediate_must_be_a_bool() -> None:
    with pytest.raises(ImproperlyConfigured) as error:

        @periodic(5, immediate="yes")  # type: ignore[arg-type]
        async def tick(ws: Any) -> None: ...

    assert message(error) == (
        f"periodic(immediate=...) on {HERE}.test_periodic_immediate_must_be_a_bool."
        "<locals>.tick takes True or False, got 'yes'."
    )


@pytest.mark.parametrize("where", ["mark", "route"])
def test_a_bare_background(where: str) -> None:
    decorator = (
        background
        if where == "mark"
        else ws_route("f", registry=RouteRegistry()).background
    )
    with pytest.raises(ImproperlyConfigured) as error:

        @decorator  # type: ignore[arg-type]
        async def feed(ws: Any) -> None: ...

    assert message(error) == (
        "background needs a task id: write @background('feed') above "
        f"{HERE}.test_a_bare_background.<locals>.feed, not a bare @background."
    )


@pytest.mark.parametrize(
    ("task_id", "shown"), [(None, "nothing"), ("", "''"), (5, "5")]
)
@pytest.mark.parametrize("where", ["mark", "route"])
def test_background_without_a_task_id(task_id: Any, shown: str, where: str) -> None:
    decorator = (
        background
        if where == "mark"
        else ws_route("f", registry=RouteRegistry()).background
    )
    arguments = () if task_id is None else (task_id,)
    with pytest.raises(ImproperlyConfigured) as error:

        @decorator(*arguments)
        async def feed(ws: Any) -> None: ...

    assert message(error) == (
        f"background on {HERE}.test_background_without_a_task_id.<locals>.feed needs a "
        f"task id: write @background('feed'), got {shown}."
    )


@pytest.mark.parametrize("where", ["mark", "route"])
def test_a_message_type_that_is_not_a_string(where: str) -> None:
    decorator = (
        on_message
        if where == "mark"
        else ws_route("m", registry=RouteRegistry()).on_message
    )
    with pytest.raises(ImproperlyConfigured) as error:

        @decorator(type=5)  # type: ignore[arg-type]
        async def chat(ws: Any, data: Any) -> None: ...

    assert message(error) == (
        f"on_message(type=...) on {HERE}.test_a_message_type_that_is_not_a_string."
        "<locals>.chat needs a non-empty string, got 5. Write @on_message(type='chat')."
    )


# Signatures --------------------------------------------------------------------------


def test_an_on_message_hook_that_cannot_take_the_data() -> None:
    with pytest.raises(ImproperlyConfigured) as error:

        @ws_route("echo", registry=RouteRegistry())
        async def echo(ws: Any) -> None: ...

    assert message(error) == (
        f"{HERE}.test_an_on_message_hook_that_cannot_take_the_data.<locals>.echo "
        "cannot be the @on_message hook of ws_route('echo'): too many positional "
        "arguments. It is called with (ws, data); URL kwargs are passed only if "
        "named in the signature or taken with **kwargs. A function under @ws_route "
        "without a hook decorator below it is the route's on_message; if a hook "
        "decorator is above @ws_route, move @ws_route to the top."
    )


def test_a_hook_that_needs_an_argument_the_url_does_not_have() -> None:
    room = ws_route("rooms/<slug:name>", registry=RouteRegistry())
    with pytest.raises(ImproperlyConfigured) as error:

        @room.on_open
        async def joined(ws: Any, room: str) -> None: ...

    assert message(error) == (
        f"{HERE}.test_a_hook_that_needs_an_argument_the_url_does_not_have.<locals>."
        "joined cannot be the @on_open hook of ws_route('rooms/<slug:name>'): "
        "missing a required argument: 'room'. It is called with (ws, name); URL "
        "kwargs are passed only if named in the signature or taken with **kwargs."
    )


def test_a_periodic_hook_that_expects_data() -> None:
    room = ws_route("tick", registry=RouteRegistry())
    with pytest.raises(ImproperlyConfigured) as error:

        @room.periodic(5)
        async def tick(ws: Any, data: Any) -> None: ...

    assert message(error) == (
        f"{HERE}.test_a_periodic_hook_that_expects_data.<locals>.tick cannot be the "
        "@periodic(5) hook of ws_route('tick'): missing a required argument: "
        "'data'. It is called with (ws); URL kwargs are passed only if named in the "
        "signature or taken with **kwargs."
    )


def test_an_on_error_hook_that_cannot_take_the_error() -> None:
    room = ws_route("room", registry=RouteRegistry())
    with pytest.raises(ImproperlyConfigured) as error:

        @room.on_error
        def failed(ws: Any) -> None: ...

    assert message(error) == (
        f"{HERE}.test_an_on_error_hook_that_cannot_take_the_error.<locals>.failed "
        "cannot be the @on_error hook of ws_route('room'): too many positional "
        "arguments. It is called with (ws, error); URL kwargs are passed only if "
        "named in the signature or taken with **kwargs."
    )


def test_an_async_generator_that_is_not_a_background_hook() -> None:
    with pytest.raises(ImproperlyConfigured) as error:

        @ws_route("stream", registry=RouteRegistry())
        async def stream(ws: Any, data: Any) -> AsyncIterator[Any]:
            yield data

    assert message(error) == (
        f"{HERE}.test_an_async_generator_that_is_not_a_background_hook.<locals>.stream "
        "is an async generator; only a @background hook can stream values, not the "
        "@on_message hook of ws_route('stream'). Return the value to send instead of "
        "yielding it."
    )


def test_a_sync_generator_hook() -> None:
    room = ws_route("feed", registry=RouteRegistry())
    with pytest.raises(ImproperlyConfigured) as error:

        @room.background("feed")
        def feed(ws: Any) -> Iterator[Any]:
            yield 1

    assert message(error) == (
        f"{HERE}.test_a_sync_generator_hook.<locals>.feed is a generator; the "
        "@background('feed') hook of ws_route('feed') must be a function ('def' or "
        "'async def'). To stream values, make it an 'async def' with 'yield' under "
        "@background."
    )


# ws_route itself ---------------------------------------------------------------------


def test_ws_route_on_a_class_that_is_not_a_handler() -> None:
    with pytest.raises(ImproperlyConfigured) as error:

        @ws_route("plain", registry=RouteRegistry())
        class Plain:
            pass

    assert message(error) == (
        f"ws_route('plain') decorates {HERE}.test_ws_route_on_a_class_that_is_not_a_"
        "handler.<locals>.Plain, which is not a WebSocketHandler subclass. Subclass "
        "WebSocketHandler, or decorate a function."
    )


def test_an_unknown_ws_route_option() -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        ws_route("echo", registry=RouteRegistry(), max_size=10)

    assert message(error) == (
        "ws_route('echo') got an unknown option 'max_size'. Options are name, "
        "middleware, registry and the handler attributes "
        f"{', '.join(sorted(OPTIONS))}."
    )


def test_the_options_are_the_handlers_public_class_attributes() -> None:
    assert {
        "PING_INTERVAL",
        "accept_headers",
        "check_origin",
        "codec",
        "max_message_size",
        "max_messages_per_second",
        "max_send_queue",
        "message_type_key",
        "subprotocols",
    } <= OPTIONS
    assert not {"middleware", "on_open", "send", "_typed_hooks"} & OPTIONS


def test_a_method_name_is_not_a_ws_route_option() -> None:
    with pytest.raises(ImproperlyConfigured, match="unknown option 'on_open'"):
        ws_route("echo", registry=RouteRegistry(), on_open=None)


def test_a_bare_ws_route() -> None:
    with pytest.raises(ImproperlyConfigured) as error:

        @ws_route  # type: ignore[arg-type]
        async def echo(ws: Any, data: Any) -> None: ...

    assert message(error) == (
        "ws_route needs a path first: write @ws_route('chat/<str:room>') above "
        f"{HERE}.test_a_bare_ws_route.<locals>.echo, not a bare @ws_route."
    )


def test_a_hook_decorator_above_ws_route() -> None:
    with pytest.raises(ImproperlyConfigured) as error:

        @on_open
        @ws_route("hello", registry=RouteRegistry())
        async def hello(ws: Any, data: Any = None) -> None: ...

    assert message(error) == (
        f"@on_open is above @ws_route('hello') on {HERE}.test_a_hook_decorator_"
        "above_ws_route.<locals>.hello, so the route never sees it. Put @ws_route "
        "outermost (first line), with the hook decorators below it."
    )


def test_a_hook_decorator_above_ws_route_on_a_function_that_cannot_be_on_message() -> (
    None
):
    with pytest.raises(ImproperlyConfigured) as error:

        @periodic(5)
        @ws_route("tick", registry=RouteRegistry())
        async def tick(ws: Any) -> None: ...

    assert message(error) == (
        f"{HERE}.test_a_hook_decorator_above_ws_route_on_a_function_that_cannot_be_on_"
        "message.<locals>.tick cannot be the @on_message hook of ws_route('tick'): too "
        "many positional arguments. It is called with (ws, data); URL kwargs are "
        "passed only if named in the signature or taken with **kwargs. A function "
        "under @ws_route without a hook decorator below it is the route's "
        "on_message; if a hook decorator is above @ws_route, move @ws_route to the "
        "top."
    )


def test_a_marked_function_added_with_a_route_method() -> None:
    room = ws_route("room", registry=RouteRegistry())
    with pytest.raises(ImproperlyConfigured) as error:

        @room.on_open
        @periodic(5)
        async def tick(ws: Any) -> None: ...

    assert message(error) == (
        f"{HERE}.test_a_marked_function_added_with_a_route_method.<locals>.tick is "
        "already marked @periodic(5); it cannot also be added with @route.on_open. "
        "Register it once: ws_route('room')(tick) takes its marks."
    )


def test_a_function_hook_on_a_class_route() -> None:
    route = ws_route("ticker", registry=RouteRegistry())

    @route
    class Ticker(WebSocketHandler):
        pass

    with pytest.raises(ImproperlyConfigured) as error:

        @route.on_open
        async def opened(ws: Any) -> None: ...

    where = f"{HERE}.test_a_function_hook_on_a_class_route.<locals>"
    assert message(error) == (
        f"ws_route('ticker') serves the class {where}.Ticker; add {where}.opened to "
        "that class as a method instead."
    )


def test_use_middleware_on_a_function() -> None:
    with pytest.raises(ImproperlyConfigured) as error:

        @use_middleware(object)
        async def echo(ws: Any, data: Any) -> None: ...

    assert message(error) == (
        "use_middleware decorates WebSocketHandler subclasses; "
        f"{HERE}.test_use_middleware_on_a_function.<locals>.echo is not one. For a "
        "function route pass middleware=[...] to ws_route."
    )


# At import -------------------------------------------------------------------


@pytest.fixture
def module_dir(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("broken_ws", None)


def test_misuse_fails_when_the_module_is_imported(module_dir: Path) -> None:
    (module_dir / "broken_ws.py").write_text(textwrap.dedent("""
            from django_ws.decorators import RouteRegistry, ws_route

            routes = RouteRegistry()
            room = ws_route("rooms/<slug:name>", registry=routes)

            @room.periodic(0)
            async def tick(ws, name):
                pass
            """))
    with pytest.raises(ImproperlyConfigured) as error:
        importlib.import_module("broken_ws")
    assert message(error) == (
        "periodic(seconds) on broken_ws.tick needs a positive number of seconds, got "
        "0. Write @periodic(5) for every five seconds."
    )
