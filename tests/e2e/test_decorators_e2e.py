"""The decorator DSL under each selected ASGI server, through a real ``websockets`` client.

The issue's forms A to D sit in ``tests/e2e/dsl_app/ws.py`` as a user would paste
them, in an app that is only added to ``INSTALLED_APPS``: no ws urlconf lists
them, so autodiscovery is what serves them. The server reports what its hooks
did, and how many periodic/background tasks are alive, at ``/debug/state``.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.conftest import LiveServerFactory
from tests.e2e.dsl_app.ws import PERIOD
from tests.e2e.servers import refusal_status
from tests.live_server import LiveServer

TIMEOUT = 5.0


def dsl_settings(**extra: Any) -> dict[str, Any]:
    """The test project plus ``dsl_app``; ``ROOT_URLCONF`` has no ws_urls sibling."""
    return {
        "INSTALLED_APPS": [*settings.INSTALLED_APPS, "tests.e2e.dsl_app"],
        "ROOT_URLCONF": "tests.e2e.dsl_app.urls",
        **extra,
    }


@pytest.fixture
def server(live_server_factory: LiveServerFactory, asgi_server: str) -> LiveServer:
    return live_server_factory(dsl_settings(), server=asgi_server)


async def receive(ws: ClientConnection) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))


async def receive_skipping_feed(ws: ClientConnection, feed: list[Any]) -> Any:
    """Return the next message that is not from the room's feed (kept in ``feed``)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        message = await receive(ws)
        if not (isinstance(message, dict) and "feed" in message):
            return message
        feed.append(message)
    raise AssertionError(f"Only feed messages within {TIMEOUT} s")


async def debug_state(server: LiveServer) -> dict[str, Any]:
    def get() -> dict[str, Any]:
        with urllib.request.urlopen(
            server.http_url("/debug/state"), timeout=TIMEOUT
        ) as r:
            return dict(json.loads(r.read()))

    return await asyncio.to_thread(get)


async def wait_for_state(
    server: LiveServer, condition: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """Poll ``/debug/state`` until ``condition`` holds (bounded)."""
    deadline = time.monotonic() + TIMEOUT
    state = await debug_state(server)
    while not condition(state):
        if time.monotonic() > deadline:
            raise AssertionError(f"Server state never matched: {state}")
        await asyncio.sleep(0.05)
        state = await debug_state(server)
    return state


def count(state: dict[str, Any], kind: str) -> int:
    return sum(1 for event in state["events"] if event[0] == kind)


# The forms answer as described ----------------------------------------------------


async def test_form_a_echoes_what_the_function_returns(server: LiveServer) -> None:
    async with connect(server.ws_url("/echo"), open_timeout=TIMEOUT) as ws:
        await ws.send(json.dumps({"text": "hi"}))
        assert await receive(ws) == {"text": "hi"}


async def test_form_b_sends_from_the_named_on_message_hook(server: LiveServer) -> None:
    async with connect(server.ws_url("/shout"), open_timeout=TIMEOUT) as ws:
        await ws.send(json.dumps({"text": "hi"}))
        assert await receive(ws) == {"loud": "HI"}


async def test_form_c_runs_every_hook_of_the_room(server: LiveServer) -> None:
    feed: list[Any] = []
    async with connect(server.ws_url("/rooms/lobby"), open_timeout=TIMEOUT) as ws:
        assert await receive(ws) == {"joined": "lobby", "user": "AnonymousUser"}
        await ws.send(json.dumps({"type": "typing"}))
        assert await receive_skipping_feed(ws, feed) == {"typing": "lobby"}
        await ws.send(json.dumps("hello"))
        assert await receive_skipping_feed(ws, feed) == {
            "said": "hello",
            "room": "lobby",
        }
        await ws.send(json.dumps({"type": "shout"}))
        assert await receive_skipping_feed(ws, feed) == {
            "said": {"type": "shout"},
            "room": "lobby",
        }
        while len(feed) < 2:
            feed.append(await receive(ws))
    assert feed[:2] == [{"feed": 0, "room": "lobby"}, {"feed": 1, "room": "lobby"}]
    state = await wait_for_state(server, lambda s: count(s, "left") == 1)
    assert ["left", "lobby"] in state["events"]


async def test_form_d_pushes_from_periodic_and_background_methods(
    server: LiveServer,
) -> None:
    async with connect(server.ws_url("/ticker/ACME"), open_timeout=TIMEOUT) as ws:
        assert await receive(ws) == {"user": "AnonymousUser"}
        assert await receive(ws) == {"symbol": "ACME"}
        assert await receive(ws) == {"symbol": "ACME"}


async def test_the_forms_are_served_by_autodiscovery(
    live_server_factory: LiveServerFactory, asgi_server: str
) -> None:
    server = live_server_factory(dsl_settings(WS_AUTODISCOVER=False), server=asgi_server)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.ws_url("/echo"), open_timeout=TIMEOUT):
            pass
    assert refused.value.response.status_code == refusal_status(asgi_server, 404)


# Per-route middleware ---------------------------------------------------------------


async def test_route_middleware_refuses_on_its_route_only(server: LiveServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(server.ws_url("/private"), open_timeout=TIMEOUT):
            pass
    assert refused.value.response.status_code == 403
    async with connect(server.ws_url("/echo"), open_timeout=TIMEOUT) as ws:
        await ws.send(json.dumps("still served"))
        assert await receive(ws) == "still served"


def log_in(username: str) -> str:
    """Create ``username`` and return a session cookie for it."""
    client = Client()
    client.force_login(User.objects.create_user(username=username))
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}"


@pytest.mark.django_db(transaction=True)
async def test_route_middleware_admits_who_it_should(server: LiveServer) -> None:
    cookie = await sync_to_async(log_in)("ann")
    async with connect(
        server.ws_url("/private"),
        additional_headers={"Cookie": cookie},
        open_timeout=TIMEOUT,
    ) as ws:
        await ws.send(json.dumps(None))
        assert await receive(ws) == {"user": "ann"}


# Tasks stop when the client leaves ---------------------------------------------------


async def test_periodic_and_background_stop_when_the_client_leaves(
    server: LiveServer,
) -> None:
    async with connect(server.ws_url("/rooms/lobby"), open_timeout=TIMEOUT) as ws:
        assert await receive(ws) == {"joined": "lobby", "user": "AnonymousUser"}
        await wait_for_state(server, lambda s: count(s, "tick") >= 2)
        state = await debug_state(server)
        assert state["marked_tasks"] == 2
    state = await wait_for_state(
        server,
        lambda s: s["marked_tasks"] == 0 and ["feed stopped", "lobby"] in s["events"],
    )
    assert ["left", "lobby"] in state["events"]
    ticks = count(state, "tick")
    await asyncio.sleep(PERIOD * 3)
    assert count(await debug_state(server), "tick") == ticks


async def test_class_periodic_and_background_stop_when_the_client_leaves(
    server: LiveServer,
) -> None:
    async with connect(server.ws_url("/ticker/ACME"), open_timeout=TIMEOUT) as ws:
        assert await receive(ws) == {"user": "AnonymousUser"}
        assert await receive(ws) == {"symbol": "ACME"}
        assert (await debug_state(server))["marked_tasks"] == 2
    state = await wait_for_state(
        server,
        lambda s: s["marked_tasks"] == 0
        and ["ticker feed stopped", "ACME"] in s["events"],
    )
    pushes = count(state, "push")
    await asyncio.sleep(PERIOD * 3)
    assert count(await debug_state(server), "push") == pushes


# Sync hooks -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_a_sync_hook_writes_through_the_orm(server: LiveServer) -> None:
    async with connect(server.ws_url("/signup"), open_timeout=TIMEOUT) as ws:
        await ws.send(json.dumps({"username": "bob"}))
        assert await receive(ws) == {"created": "bob", "users": 1}
    names = await sync_to_async(
        lambda: list(User.objects.values_list("username", flat=True))
    )()
    assert names == ["bob"]
