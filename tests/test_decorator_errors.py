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
OPTION_NAMES = ", ".join(sorted(OPTIONS))


def message(error: pytest.ExceptionInfo[ImproperlyConfigured]) -> str:
    return str(error.value)


# Each misuse below is a function that misconfigures; MISUSES pairs it with the exact
# message it must raise. "{where}" in a message stands for the qualified name of the
# misuse's own locals, where the offending function or class is defined.


def the_same_path_registered_twice() -> None:
    reg = RouteRegistry()

    @ws_route("echo", registry=reg)
    async def echo(ws: Any, data: Any) -> Any: ...

    @ws_route("echo", registry=reg)
    async def other(ws: Any, data: Any) -> Any: ...


def the_same_path_registered_twice_by_a_class() -> None:
    reg = RouteRegistry()

    @ws_route("ticker", registry=reg)
    class Ticker(WebSocketHandler):
        pass

    class Other(WebSocketHandler):
        pass

    ws_route("ticker", registry=reg)(Other)


def two_untyped_on_message_hooks_on_one_route() -> None:
    room = ws_route("room", registry=RouteRegistry())

    @room.on_message
    async def said(ws: Any, data: Any) -> None: ...

    @room.on_message
    async def also_said(ws: Any, data: Any) -> None: ...


def two_hooks_for_one_message_type() -> None:
    room = ws_route("room", registry=RouteRegistry())

    @room.on_message(type="chat")
    async def chat(ws: Any, data: Any) -> None: ...

    @room.on_message(type="chat")
    async def chat_again(ws: Any, data: Any) -> None: ...


def two_on_open_hooks_on_one_route() -> None:
    room = ws_route("room", registry=RouteRegistry())

    @room.on_open
    async def first(ws: Any) -> None: ...

    @room.on_open
    async def second(ws: Any) -> None: ...


def two_background_tasks_with_one_id() -> None:
    room = ws_route("room", registry=RouteRegistry())

    @room.background("feed")
    async def feed(ws: Any) -> None: ...

    @room.background("feed")
    async def other_feed(ws: Any) -> None: ...


def two_methods_marked_for_one_lifecycle_hook_in_a_class() -> None:
    class Greeter(WebSocketHandler):
        @on_open
        async def greet(self) -> None: ...

        # Below the decorator: above it, the name on_open would be this method.
        async def on_open(self) -> None: ...


def periodic_of(where: str) -> Any:
    """``@periodic`` as a mark, or as the method of a route."""
    return (
        periodic
        if where == "mark"
        else ws_route("tick", registry=RouteRegistry()).periodic
    )


def background_of(where: str) -> Any:
    """``@background`` as a mark, or as the method of a route."""
    return (
        background
        if where == "mark"
        else ws_route("f", registry=RouteRegistry()).background
    )


def on_message_of(where: str) -> Any:
    """``@on_message`` as a mark, or as the method of a route."""
    return (
        on_message
        if where == "mark"
        else ws_route("m", registry=RouteRegistry()).on_message
    )


def a_period_that_is_not_a_positive_number(where: str, seconds: Any) -> None:
    @periodic_of(where)(seconds)
    async def tick(ws: Any) -> None: ...


def periodic_without_a_period(where: str) -> None:
    @periodic_of(where)()
    async def tick(ws: Any) -> None: ...


def a_bare_periodic(where: str) -> None:
    @periodic_of(where)
    async def tick(ws: Any) -> None: ...


def periodic_immediate_that_is_not_a_bool() -> None:
    @periodic(5, immediate="yes")  # type: ignore[arg-type]
    async def tick(ws: Any) -> None: ...


def a_bare_background(where: str) -> None:
    @background_of(where)
    async def feed(ws: Any) -> None: ...


def background_without_a_task_id(where: str, task_id: Any) -> None:
    arguments = () if task_id is None else (task_id,)

    @background_of(where)(*arguments)
    async def feed(ws: Any) -> None: ...


def a_message_type_that_is_not_a_string(where: str) -> None:
    @on_message_of(where)(type=5)
    async def chat(ws: Any, data: Any) -> None: ...


def an_on_message_hook_that_cannot_take_the_data() -> None:
    @ws_route("echo", registry=RouteRegistry())
    async def echo(ws: Any) -> None: ...


def a_hook_that_needs_an_argument_the_url_does_not_have() -> None:
    room = ws_route("rooms/<slug:name>", registry=RouteRegistry())

    @room.on_open
    async def joined(ws: Any, room: str) -> None: ...


def a_periodic_hook_that_expects_data() -> None:
    room = ws_route("tick", registry=RouteRegistry())

    @room.periodic(5)
    async def tick(ws: Any, data: Any) -> None: ...


def an_on_error_hook_that_cannot_take_the_error() -> None:
    room = ws_route("room", registry=RouteRegistry())

    @room.on_error
    def failed(ws: Any) -> None: ...


def an_async_generator_that_is_not_a_background_hook() -> None:
    @ws_route("stream", registry=RouteRegistry())
    async def stream(ws: Any, data: Any) -> AsyncIterator[Any]:
        yield data


def a_sync_generator_hook() -> None:
    room = ws_route("feed", registry=RouteRegistry())

    @room.background("feed")
    def feed(ws: Any) -> Iterator[Any]:
        yield 1


def ws_route_on_a_class_that_is_not_a_handler() -> None:
    @ws_route("plain", registry=RouteRegistry())
    class Plain:
        pass


def an_unknown_ws_route_option() -> None:
    ws_route("echo", registry=RouteRegistry(), max_size=10)


def a_method_name_as_a_ws_route_option() -> None:
    ws_route("echo", registry=RouteRegistry(), on_open=None)


def a_bare_ws_route() -> None:
    @ws_route  # type: ignore[arg-type]
    async def echo(ws: Any, data: Any) -> None: ...


def a_hook_decorator_above_ws_route() -> None:
    @on_open
    @ws_route("hello", registry=RouteRegistry())
    async def hello(ws: Any, data: Any = None) -> None: ...


def a_hook_decorator_above_ws_route_on_a_function_that_cannot_be_on_message() -> None:
    @periodic(5)
    @ws_route("tick", registry=RouteRegistry())
    async def tick(ws: Any) -> None: ...


def a_marked_function_added_with_a_route_method() -> None:
    room = ws_route("room", registry=RouteRegistry())

    @room.on_open
    @periodic(5)
    async def tick(ws: Any) -> None: ...


def a_function_hook_on_a_class_route() -> None:
    route = ws_route("ticker", registry=RouteRegistry())

    @route
    class Ticker(WebSocketHandler):
        pass

    @route.on_open
    async def opened(ws: Any) -> None: ...


def use_middleware_on_a_function() -> None:
    @use_middleware(object)
    async def echo(ws: Any, data: Any) -> None: ...


def misuse(
    case: Any, expected: str, *arguments: Any, variant: str = ""
) -> Any:
    """One row of the table: ``case(*arguments)`` must raise ``expected``."""
    name = case.__name__.replace("_", " ")
    return pytest.param(
        case, arguments, expected, id=f"{name} ({variant})" if variant else name
    )


REGISTERED_TWICE = (
    "The WebSocket path '{path}' is registered twice: by {where}.{first} and by "
    "{where}.{second}. Give one of them another path, or make the second a hook of "
    "the first route (room = ws_route(...); @room.on_message ...)."
)
CALLED_WITH = (
    "It is called with ({arguments}); URL kwargs are passed only if named in the "
    "signature or taken with **kwargs."
)
NOT_ON_MESSAGE = (
    "{where}.{name} cannot be the @on_message hook of ws_route('{path}'): too many "
    "positional arguments. It is called with (ws, data); URL kwargs are passed only "
    "if named in the signature or taken with **kwargs. A function under @ws_route "
    "without a hook decorator below it is the route's on_message; if a hook "
    "decorator is above @ws_route, move @ws_route to the top."
)
WHERES = ["mark", "route"]

MISUSES = [
    # Paths and hooks registered twice.
    misuse(
        the_same_path_registered_twice,
        REGISTERED_TWICE.replace("{path}", "echo")
        .replace("{first}", "echo")
        .replace("{second}", "other"),
    ),
    misuse(
        the_same_path_registered_twice_by_a_class,
        REGISTERED_TWICE.replace("{path}", "ticker")
        .replace("{first}", "Ticker")
        .replace("{second}", "Other"),
    ),
    misuse(
        two_untyped_on_message_hooks_on_one_route,
        "ws_route('room') has two on_message hooks: {where}.said and "
        "{where}.also_said. Keep one, or give them different message types with "
        "@on_message(type=...).",
    ),
    misuse(
        two_hooks_for_one_message_type,
        "ws_route('room') has two on_message(type='chat') hooks: {where}.chat and "
        "{where}.chat_again. Keep one, or give them different message types with "
        "@on_message(type=...).",
    ),
    misuse(
        two_on_open_hooks_on_one_route,
        "ws_route('room') has two on_open hooks: {where}.first and {where}.second. "
        "Keep one.",
    ),
    misuse(
        two_background_tasks_with_one_id,
        "ws_route('room') has two background('feed') hooks: {where}.feed and "
        "{where}.other_feed. Keep one, or give them different task ids.",
    ),
    misuse(
        two_methods_marked_for_one_lifecycle_hook_in_a_class,
        "{where}.Greeter has two on_open hooks: on_open and greet (marked @on_open). "
        "Keep one.",
    ),
    # Periodic and background options.
    *[
        misuse(
            a_period_that_is_not_a_positive_number,
            "periodic(seconds) on {where}.tick needs a positive number of seconds, "
            f"got {seconds!r}. Write @periodic(5) for every five seconds.",
            where,
            seconds,
            variant=f"{where}, {seconds!r}",
        )
        for where in WHERES
        for seconds in [0, -1, 0.0, math.inf, math.nan, "5", True, None]
    ],
    *[
        misuse(
            periodic_without_a_period,
            "periodic(seconds) on {where}.tick needs a positive number of seconds, "
            "got None. Write @periodic(5) for every five seconds.",
            where,
            variant=where,
        )
        for where in WHERES
    ],
    *[
        misuse(
            a_bare_periodic,
            "periodic needs a period: write @periodic(5) above {where}.tick, not a "
            "bare @periodic.",
            where,
            variant=where,
        )
        for where in WHERES
    ],
    misuse(
        periodic_immediate_that_is_not_a_bool,
        "periodic(immediate=...) on {where}.tick takes True or False, got 'yes'.",
    ),
    *[
        misuse(
            a_bare_background,
            "background needs a task id: write @background('feed') above "
            "{where}.feed, not a bare @background.",
            where,
            variant=where,
        )
        for where in WHERES
    ],
    *[
        misuse(
            background_without_a_task_id,
            "background on {where}.feed needs a task id: write @background('feed'), "
            f"got {shown}.",
            where,
            task_id,
            variant=f"{where}, {task_id!r}",
        )
        for where in WHERES
        for task_id, shown in [(None, "nothing"), ("", "''"), (5, "5")]
    ],
    *[
        misuse(
            a_message_type_that_is_not_a_string,
            "on_message(type=...) on {where}.chat needs a non-empty string, got 5. "
            "Write @on_message(type='chat').",
            where,
            variant=where,
        )
        for where in WHERES
    ],
    # Signatures.
    misuse(
        an_on_message_hook_that_cannot_take_the_data,
        NOT_ON_MESSAGE.replace("{name}", "echo").replace("{path}", "echo"),
    ),
    misuse(
        a_hook_that_needs_an_argument_the_url_does_not_have,
        "{where}.joined cannot be the @on_open hook of ws_route('rooms/<slug:name>'): "
        "missing a required argument: 'room'. "
        + CALLED_WITH.replace("{arguments}", "ws, name"),
    ),
    misuse(
        a_periodic_hook_that_expects_data,
        "{where}.tick cannot be the @periodic(5) hook of ws_route('tick'): missing a "
        "required argument: 'data'. " + CALLED_WITH.replace("{arguments}", "ws"),
    ),
    misuse(
        an_on_error_hook_that_cannot_take_the_error,
        "{where}.failed cannot be the @on_error hook of ws_route('room'): too many "
        "positional arguments. " + CALLED_WITH.replace("{arguments}", "ws, error"),
    ),
    misuse(
        an_async_generator_that_is_not_a_background_hook,
        "{where}.stream is an async generator; only a @background hook can stream "
        "values, not the @on_message hook of ws_route('stream'). Return the value "
        "to send instead of yielding it.",
    ),
    misuse(
        a_sync_generator_hook,
        "{where}.feed is a generator; the @background('feed') hook of "
        "ws_route('feed') must be a function ('def' or 'async def'). To stream "
        "values, make it an 'async def' with 'yield' under @background.",
    ),
    # ws_route itself.
    misuse(
        ws_route_on_a_class_that_is_not_a_handler,
        "ws_route('plain') decorates {where}.Plain, which is not a WebSocketHandler "
        "subclass. Subclass WebSocketHandler, or decorate a function.",
    ),
    misuse(
        an_unknown_ws_route_option,
        "ws_route('echo') got an unknown option 'max_size'. Options are name, "
        f"middleware, registry and the handler attributes {OPTION_NAMES}.",
    ),
    misuse(
        a_method_name_as_a_ws_route_option,
        "ws_route('echo') got an unknown option 'on_open'. Options are name, "
        f"middleware, registry and the handler attributes {OPTION_NAMES}.",
    ),
    misuse(
        a_bare_ws_route,
        "ws_route needs a path first: write @ws_route('chat/<str:room>') above "
        "{where}.echo, not a bare @ws_route.",
    ),
    misuse(
        a_hook_decorator_above_ws_route,
        "@on_open is above @ws_route('hello') on {where}.hello, so the route never "
        "sees it. Put @ws_route outermost (first line), with the hook decorators "
        "below it.",
    ),
    misuse(
        a_hook_decorator_above_ws_route_on_a_function_that_cannot_be_on_message,
        NOT_ON_MESSAGE.replace("{name}", "tick").replace("{path}", "tick"),
    ),
    misuse(
        a_marked_function_added_with_a_route_method,
        "{where}.tick is already marked @periodic(5); it cannot also be added with "
        "@route.on_open. Register it once: ws_route('room')(tick) takes its marks.",
    ),
    misuse(
        a_function_hook_on_a_class_route,
        "ws_route('ticker') serves the class {where}.Ticker; add {where}.opened to "
        "that class as a method instead.",
    ),
    misuse(
        use_middleware_on_a_function,
        "use_middleware decorates WebSocketHandler subclasses; {where}.echo is not "
        "one. For a function route pass middleware=[...] to ws_route.",
    ),
]


@pytest.mark.parametrize(("case", "arguments", "expected"), MISUSES)
def test_each_misuse_fails_with_a_message_saying_what_to_change(
    case: Any, arguments: tuple[Any, ...], expected: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as error:
        case(*arguments)
    where = f"{HERE}.{case.__qualname__}.<locals>"
    assert message(error) == expected.replace("{where}", where)


def test_a_path_registered_twice_keeps_only_the_first_route() -> None:
    reg = RouteRegistry()

    @ws_route("echo", registry=reg)
    async def echo(ws: Any, data: Any) -> Any: ...

    with pytest.raises(ImproperlyConfigured):

        @ws_route("echo", registry=reg)
        async def other(ws: Any, data: Any) -> Any: ...

    assert [str(p.pattern) for p in reg.urlpatterns] == ["echo"]


def test_a_class_refused_for_a_path_registered_twice_is_left_untouched() -> None:
    reg = RouteRegistry()

    @ws_route("ticker", registry=reg)
    class Ticker(WebSocketHandler):
        pass

    class Other(WebSocketHandler):
        pass

    with pytest.raises(ImproperlyConfigured):
        ws_route("ticker", registry=reg)(Other)

    assert Other.middleware == ()


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
