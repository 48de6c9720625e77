"""The middleware chain: WS_MIDDLEWARE order, what it wraps, refusals, built once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.urls import path

from django_ws import WebSocketHandler
from django_ws.compile import record_for
from django_ws.testing import WebSocketTestClient
from tests.core_support import client, client_for
from tests.routing_apps import middleware

MW = "tests.routing_apps.middleware."


@pytest.fixture(autouse=True)
def clean_records() -> Iterator[None]:
    middleware.EVENTS.clear()
    middleware.BUILT.clear()
    yield
    middleware.EVENTS.clear()
    middleware.BUILT.clear()


def recording_handler() -> type[WebSocketHandler]:
    class Recorded(WebSocketHandler):
        async def on_open(self) -> None:
            middleware.EVENTS.append("on_open")

        async def on_message(self, data: Any) -> Any:
            return {"echo": data}

        async def on_close(self) -> None:
            middleware.EVENTS.append("on_close")

    return Recorded


async def test_the_first_middleware_listed_runs_outermost(settings: Any) -> None:
    settings.WS_MIDDLEWARE = [MW + "Outer", MW + "Inner"]
    async with client(recording_handler()).connect("/ws") as ws:
        await ws.send_json("hi")
        assert await ws.receive_json() == {"echo": "hi"}
    assert [e[0] if isinstance(e, tuple) else e for e in middleware.EVENTS] == [
        "outer before",
        "inner before",
        "on_open",
        "on_close",
        "inner after",
        "outer after",
    ]


async def test_middleware_wraps_from_before_accept_to_after_on_close(
    settings: Any,
) -> None:
    settings.WS_MIDDLEWARE = [MW + "Outer"]
    async with client(recording_handler()).connect("/ws"):
        pass
    # (event, connected, closed): not yet accepted before, closed after.
    assert middleware.EVENTS == [
        ("outer before", False, False),
        "on_open",
        "on_close",
        ("outer after", False, True),
    ]


async def test_a_handlers_own_middleware_runs_inside_ws_middleware(
    settings: Any,
) -> None:
    settings.WS_MIDDLEWARE = [MW + "Outer"]

    class WithOwn(WebSocketHandler):
        middleware = [MW + "Inner"]

    async with client(WithOwn).connect("/ws"):
        pass
    assert [event[0] for event in middleware.EVENTS] == [
        "outer before",
        "inner before",
        "inner after",
        "outer after",
    ]


async def test_what_a_middleware_sets_on_the_request_is_seen_by_the_handler(
    settings: Any,
) -> None:
    settings.WS_MIDDLEWARE = [MW + "Tagging"]

    class Tagged(WebSocketHandler):
        async def on_open(self) -> None:
            self.send({"tag": self.request.tag})

    async with client(Tagged).connect("/ws") as ws:
        assert await ws.receive_json() == {"tag": "set by middleware"}


@pytest.mark.parametrize(
    ("entry", "status"),
    [("DenyUnauthorized", 401), ("DenyDefault", 403), ("ReturnsEarly", 403)],
)
async def test_a_refusing_middleware_refuses_the_handshake(
    settings: Any, entry: str, status: int
) -> None:
    settings.WS_MIDDLEWARE = [MW + entry]
    Recorded = recording_handler()
    async with client(Recorded).connect("/ws") as ws:
        assert not ws.accepted
        assert ws.status == status
    assert "on_open" not in middleware.EVENTS
    assert "on_close" not in middleware.EVENTS


async def test_deny_connection_without_the_extension_is_a_403_close(
    settings: Any,
) -> None:
    settings.WS_MIDDLEWARE = [MW + "DenyUnauthorized"]
    async with client(recording_handler()).connect(
        "/ws", http_response_extension=False
    ) as ws:
        assert not ws.accepted
        assert ws.status == 403
        assert ws.close_code == 1008
    assert middleware.EVENTS == []


async def test_a_middleware_that_raises_before_accept_refuses_with_500(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.WS_MIDDLEWARE = [MW + "Explodes"]
    Recorded = recording_handler()
    async with client(Recorded).connect("/ws") as ws:
        assert ws.status == 500
    assert middleware.EVENTS == []
    [record] = [
        r
        for r in caplog.records
        if r.name == "django_ws" and r.levelno >= logging.ERROR
    ]
    assert (
        record.getMessage() == f"Middleware of <{Recorded.__qualname__} '/ws'> failed"
    )
    assert record.exc_info is not None and str(record.exc_info[1]) == "middleware bug"


async def test_the_chain_is_built_once_per_handler_class(settings: Any) -> None:
    settings.WS_MIDDLEWARE = [MW + "Outer"]

    class Base(WebSocketHandler):
        async def on_open(self) -> None:
            self.send({"class": type(self).__name__})

    class Child(Base):
        pass

    ws_client = client_for(path("base", Base), path("child", Child))
    for url in ["/base", "/child", "/base", "/child"]:
        async with ws_client.connect(url) as ws:
            assert await ws.receive_json() == {"class": url[1:].title()}
    assert middleware.BUILT == ["outer", "outer"]  # one chain per class
    assert record_for(Base).chain is record_for(Base).chain
    assert record_for(Base).chain is not record_for(Child).chain


async def test_subclasses_do_not_share_a_chain_by_accident(settings: Any) -> None:
    """1.0.2 cached the chain on the first class used; each class has its own."""

    class First(WebSocketHandler):
        middleware = [MW + "Outer"]

        async def on_open(self) -> None:
            self.send({"class": type(self).__name__})

    class Second(First):
        middleware = [MW + "Inner"]

    ws_client = client_for(path("first", First), path("second", Second))
    async with ws_client.connect("/first") as ws:
        assert await ws.receive_json() == {"class": "First"}
    async with ws_client.connect("/second") as ws:
        assert await ws.receive_json() == {"class": "Second"}
    assert [event[0] for event in middleware.EVENTS] == [
        "outer before",
        "outer after",
        "inner before",
        "inner after",
    ]


async def test_the_chain_is_rebuilt_when_ws_middleware_changes(settings: Any) -> None:
    Recorded = recording_handler()
    settings.WS_MIDDLEWARE = [MW + "Outer"]
    first = record_for(Recorded).chain
    settings.WS_MIDDLEWARE = [MW + "Inner"]
    assert record_for(Recorded).chain is not first
    assert middleware.BUILT == ["outer", "inner"]


# The seed README's middleware, verbatim ---------------------------------------


def whoami() -> type[WebSocketHandler]:
    class WhoAmI(WebSocketHandler):
        async def on_open(self) -> None:
            user = self.request.user
            self.send({"user": str(user), "authenticated": user.is_authenticated})

    return WhoAmI


@pytest.mark.django_db(transaction=True)
async def test_the_seed_readme_auth_middleware_works_verbatim(
    settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.WS_MIDDLEWARE = ["tests.routing_apps.seed_middleware.AuthAsyncMiddleware"]
    ws_client = client(whoami())
    async with ws_client.connect("/ws") as ws:
        assert await ws.receive_json() == {
            "user": "AnonymousUser",
            "authenticated": False,
        }
    assert (
        capsys.readouterr().out == "Pre Run Loop\nUSER: AnonymousUser\nPOST Run Loop\n"
    )

    user = await sync_to_async(User.objects.create_user)("alice", password="x")
    await ws_client.force_login(user)
    async with ws_client.connect("/ws") as ws:
        assert await ws.receive_json() == {"user": "alice", "authenticated": True}
    assert capsys.readouterr().out == "Pre Run Loop\nUSER: alice\nPOST Run Loop\n"


@pytest.mark.django_db(transaction=True)
async def test_the_builtin_auth_middleware_sees_the_logged_in_user(
    settings: Any,
) -> None:
    settings.WS_MIDDLEWARE = ["django_ws.middleware.AuthMiddleware"]
    user = await sync_to_async(User.objects.create_user)("bob")
    ws_client = WebSocketTestClient(client(whoami()).app)
    await ws_client.force_login(user)
    async with ws_client.connect("/ws") as ws:
        assert await ws.receive_json() == {"user": "bob", "authenticated": True}
    ws_client.logout()
    async with ws_client.connect("/ws") as ws:
        assert await ws.receive_json() == {
            "user": "AnonymousUser",
            "authenticated": False,
        }
