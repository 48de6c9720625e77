"""django_ws.compile: a handler class's hooks read once, the same checks for both forms."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_ws import WebSocketHandler, background, on_message, periodic, ws_route
from django_ws.compile import record_for
from django_ws.decorators.registry import RouteRegistry
from django_ws.marks import HookKind

HERE = __name__


def test_two_typed_message_hooks_in_a_class_are_refused_like_in_the_dsl() -> None:
    with pytest.raises(ImproperlyConfigured) as class_error:

        class Chat(WebSocketHandler):
            @on_message(type="chat")
            async def first(self, data: Any) -> None: ...

            @on_message(type="chat")
            async def second(self, data: Any) -> None: ...

    assert str(class_error.value) == (
        f"{HERE}.test_two_typed_message_hooks_in_a_class_are_refused_like_in_the_dsl."
        "<locals>.Chat has two on_message(type='chat') hooks: first and second "
        "(marked @on_message(type='chat')). Keep one, or give them different "
        "message types with @on_message(type=...)."
    )


def test_two_background_tasks_with_one_id_in_a_class_are_refused() -> None:
    with pytest.raises(ImproperlyConfigured) as error:

        class Feed(WebSocketHandler):
            @background("feed")
            async def first(self) -> None: ...

            @background("feed")
            async def second(self) -> None: ...

    assert str(error.value).endswith(
        "Feed has two background('feed') hooks: first and second "
        "(marked @background('feed')). Keep one, or give them different task ids."
    )


def test_the_dsl_refuses_the_same_duplicate_with_the_same_sentence() -> None:
    room = ws_route("room", registry=RouteRegistry())

    @room.on_message(type="chat")
    async def first(ws: Any, data: Any) -> None: ...

    with pytest.raises(ImproperlyConfigured) as error:

        @room.on_message(type="chat")
        async def second(ws: Any, data: Any) -> None: ...

    assert " has two on_message(type='chat') hooks: " in str(error.value)
    assert str(error.value).endswith(
        "Keep one, or give them different message types with @on_message(type=...)."
    )


def test_any_number_of_periodic_hooks_is_allowed() -> None:
    class Ticker(WebSocketHandler):
        @periodic(1)
        async def one(self) -> None: ...

        @periodic(1)
        async def two(self) -> None: ...

    assert [name for name, _ in Ticker.hook_table.tasks] == ["one", "two"]


def test_a_subclass_overrides_its_bases_typed_hook() -> None:
    class Base(WebSocketHandler):
        @on_message(type="chat")
        async def chat(self, data: Any) -> str:
            return "base"

    class Child(Base):
        @on_message(type="chat")
        async def louder(self, data: Any) -> str:
            return "child"

    assert set(Child.hook_table.typed) == {"chat"}
    assert Child.hook_table.typed["chat"] is not Base.hook_table.typed["chat"]


def test_the_dsl_hands_its_hooks_to_the_class_without_marking_them_again() -> None:
    room = ws_route("room/<str:name>", registry=RouteRegistry())

    @room.on_message(type="say")
    async def say(ws: Any, data: Any) -> None: ...

    @room.periodic(5)
    async def tick(ws: Any) -> None: ...

    table = room.handler_class.hook_table
    assert [(name, spec.kind) for name, spec in table.declared] == [
        ("say", HookKind.ON_MESSAGE),
        ("tick", HookKind.PERIODIC),
    ]
    assert not hasattr(vars(room.handler_class)["tick"], "_self_hook_specs")


def test_a_class_has_one_record_until_the_settings_change() -> None:
    class Echo(WebSocketHandler):
        max_message_size = 10

    first = record_for(Echo)
    assert record_for(Echo) is first
    assert first.limits.max_message_size == 10
    with override_settings(WS_MAX_SEND_QUEUE=7):
        changed = record_for(Echo)
        assert changed is not first
        assert changed.limits.max_send_queue == 7
        assert changed.hooks is Echo.hook_table


def test_default_hooks_are_not_run() -> None:
    class Quiet(WebSocketHandler):
        pass

    class Greeter(WebSocketHandler):
        async def on_open(self) -> None: ...

    assert (Quiet.hook_table.runs_on_open, Quiet.hook_table.runs_on_close) == (False, False)
    assert Greeter.hook_table.runs_on_open is True
