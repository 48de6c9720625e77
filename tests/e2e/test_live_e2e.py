"""The live HTML stream socket over the wire, on each ASGI server, behind Redis.

The server runs the test project with the Redis backend and a history for the
groups ``kept:*``; this process renders ``{% ws_stream %}`` and broadcasts
fragments with ``broadcast_fragment_sync`` through the same Redis, as a view or
a task in another process would. Clients are ``websockets`` clients.
"""

from __future__ import annotations

import asyncio
import html
import re
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.template import Context, Template
from django.test import RequestFactory
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from django_ws.live import broadcast_fragment_sync, sign_stream
from tests.conftest import LiveServerFactory
from tests.e2e.servers import refusal_status
from tests.live_server import LiveServer


def broadcast_settings(redis_url: str) -> dict[str, Any]:
    return {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": redis_url,
        "OPTIONS": {"TIMEOUT": 2},
        "HISTORY": {"kept:*": {"SIZE": 50, "TTL": 600}},
    }


@pytest.fixture
def server(
    live_server_factory: LiveServerFactory, redis_url: str, asgi_server: str, settings: Any
) -> LiveServer:
    settings.WS_BROADCAST = broadcast_settings(redis_url)  # this process publishes
    settings.TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates"}]
    return live_server_factory(
        {"WS_BROADCAST": broadcast_settings(redis_url)}, server=asgi_server
    )


def element_path(name: str, flavor: str) -> str:
    """Render ``{% ws_stream name %}`` now; return the path and query it connects to."""
    rendered = Template("{% load django_ws %}{% ws_stream name client=flavor %}").render(
        Context({"name": name, "flavor": flavor, "request": RequestFactory().get("/")})
    )
    url = html.unescape(re.search(r'(?:ws-connect|src)="([^"]+)"', rendered)[1])  # type: ignore[index]
    return re.sub(r"^ws://testserver", "", url)


async def test_a_forged_or_altered_token_is_refused_before_accept(
    server: LiveServer, asgi_server: str
) -> None:
    value, signature = sign_stream("board").split(":")
    other_value = sign_stream("other").split(":")[0]
    for path in (
        f"/ws/django-ws/stream/htmx/{other_value}:{signature}",
        f"/ws/django-ws/stream/turbo/{value}:{signature[::-1]}",
        f"/ws/django-ws/stream/htmx/{value}",
    ):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(server.ws_url(path), open_timeout=5):
                pass
        assert refused.value.response.status_code == refusal_status(asgi_server, 403)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            server.ws_url(f"/ws/django-ws/stream/vue/{value}:{signature}"), open_timeout=5
        ):
            pass
    assert refused.value.response.status_code == refusal_status(asgi_server, 404)


FRAMES = {
    "htmx": (
        '<div hx-swap-oob="beforeend:#log">&lt;between&gt;</div>',
        '<div hx-swap-oob="delete:#item_1"></div>',
    ),
    "turbo": (
        '<turbo-stream action="append" target="log"><template>&lt;between&gt;'
        "</template></turbo-stream>",
        '<turbo-stream action="remove" target="item_1"></turbo-stream>',
    ),
}


async def test_a_page_gets_what_came_after_its_render_then_live_changes(
    server: LiveServer,
) -> None:
    for flavor, (replayed, live) in FRAMES.items():  # one server start for both
        name = f"kept:e2e-{flavor}"
        await sync_to_async(broadcast_fragment_sync)(
            name, "append", target="log", html="before the render"
        )
        path = await sync_to_async(element_path)(name, flavor)
        assert "ws_since=" in path
        await sync_to_async(broadcast_fragment_sync)(
            name, "append", target="log", html="<between>"
        )
        async with connect(server.ws_url(path), open_timeout=5) as page:
            assert await asyncio.wait_for(page.recv(), 5) == replayed
            await sync_to_async(broadcast_fragment_sync)(name, "remove", target="item_1")
            assert await asyncio.wait_for(page.recv(), 5) == live
