"""The live stream socket, in process: tokens, rendering once, frames, history."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, Template
from django.test import RequestFactory

import django_ws.live.stream as stream_module
from django_ws.broadcast import get_backend
from django_ws.live import (
    broadcast_fragment,
    broadcast_fragment_sync,
    dom_id,
    sign_stream,
    stream_name,
    verify_stream,
)
from django_ws.live.names import InvalidStreamToken
from django_ws.testing import WebSocketTestClient

TEMPLATES_DIR = Path(__file__).parent / "live_templates"


@pytest.fixture(autouse=True)
def live_settings(settings: Any) -> Iterator[None]:
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.MemoryBackend",
        "HISTORY": {"kept:*": {"SIZE": 50, "TTL": 600}},
    }
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [TEMPLATES_DIR],
        }
    ]
    yield
    assert get_backend().member_count() == 0


def stream_path(name: str, flavor: str = "htmx") -> str:
    return f"/ws/django-ws/stream/{flavor}/{sign_stream(name)}"


class Counter:
    """Counts how often a template prints it: once per render."""

    def __init__(self) -> None:
        self.renders = 0

    def __str__(self) -> str:
        self.renders += 1
        return str(self.renders)


# Names and tokens ------------------------------------------------------------


def test_a_stream_is_named_by_its_parts_and_a_model_by_app_label_model_and_pk() -> None:
    user = User(pk=7)
    assert stream_name("board", user) == "board:auth.user:7"
    assert stream_name(("board", user)) == stream_name("board", user)
    assert stream_name("a", 3) == "a:3"
    with pytest.raises(TypeError, match="at least one part"):
        stream_name()
    with pytest.raises(ValueError, match="no primary key"):
        stream_name(User())
    with pytest.raises(TypeError, match="non-empty str"):
        stream_name("")


def test_dom_id_names_a_saved_instance_by_model_and_pk() -> None:
    assert dom_id(User(pk=5)) == "user_5"
    assert dom_id(User()) == "new_user"
    assert dom_id(User(pk=5), "edit") == "edit_user_5"
    assert Template("{% load django_ws %}{% dom_id u %}").render(
        Context({"u": User(pk=9)})
    ) == "user_9"


def test_a_token_verifies_only_unaltered_and_made_for_streams() -> None:
    token = sign_stream("board:1")
    assert verify_stream(token) == "board:1"
    value, signature = token.rsplit(":", 1)
    for forged in (
        value + ":" + signature[:-1] + ("A" if signature[-1] != "A" else "B"),
        signing.Signer(salt="other").sign_object("board:1"),
        signing.Signer().sign_object("board:1"),
        "board:1",
        "",
    ):
        with pytest.raises(InvalidStreamToken):
            verify_stream(forged)


# The socket ------------------------------------------------------------------


async def test_a_forged_token_is_refused_with_403_before_accept() -> None:
    token = sign_stream("board")
    forged = sign_stream("other-board").split(":")[0] + ":" + token.split(":")[1]
    async with WebSocketTestClient().connect(
        f"/ws/django-ws/stream/htmx/{forged}"
    ) as ws:
        assert not ws.accepted
        assert ws.status == 403


async def test_an_unknown_flavor_is_not_found() -> None:
    async with WebSocketTestClient().connect(
        f"/ws/django-ws/stream/vue/{sign_stream('board')}"
    ) as ws:
        assert ws.status == 404


async def test_the_route_prefix_follows_the_setting(settings: Any) -> None:
    settings.WS_LIVE_STREAM_PATH = "live/"
    async with WebSocketTestClient().connect(
        f"/live/turbo/{sign_stream('board')}"
    ) as ws:
        assert ws.accepted
    settings.WS_LIVE_STREAM_PATH = None
    async with WebSocketTestClient().connect(stream_path("board")) as ws:
        assert ws.status == 404


@pytest.mark.parametrize("value", ["/ws/", "ws", "", 5])
def test_a_bad_stream_path_setting_is_improperly_configured(settings: Any, value: Any) -> None:
    settings.WS_LIVE_STREAM_PATH = value
    with pytest.raises(ImproperlyConfigured, match="WS_LIVE_STREAM_PATH"):
        stream_module.stream_urlpatterns()


async def test_each_flavor_gets_its_markup(monkeypatch: pytest.MonkeyPatch) -> None:
    client = WebSocketTestClient()
    async with client.connect(stream_path("board", "htmx")) as htmx_page, client.connect(
        stream_path("board", "turbo")
    ) as turbo_page:
        await broadcast_fragment("board", "update", target="count", html="3")
        assert await htmx_page.receive_text() == (
            '<div hx-swap-oob="innerHTML:#count">3</div>'
        )
        assert await turbo_page.receive_text() == (
            '<turbo-stream action="update" target="count"><template>3</template>'
            "</turbo-stream>"
        )


async def test_a_broadcast_renders_once_and_wraps_once_per_flavor_whatever_the_members(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wraps: list[str] = []
    real_frame_for = stream_module.frame_for

    def counting_frame_for(flavor: str, fragment: Any) -> str:
        wraps.append(flavor)
        return real_frame_for(flavor, fragment)

    monkeypatch.setattr(stream_module, "frame_for", counting_frame_for)
    counter = Counter()
    client = WebSocketTestClient()
    async with AsyncExitStack() as stack:
        pages = [
            await stack.enter_async_context(client.connect(stream_path("board", flavor)))
            for flavor in ["htmx", "turbo"] * 10
        ]
        await sync_to_async(broadcast_fragment_sync)(
            "board", "append", target="cards", template="live/counted.html",
            context={"counter": counter},
        )
        texts = [await page.receive_text() for page in pages]
    assert counter.renders == 1
    assert sorted(wraps) == ["htmx", "turbo"]
    assert len(set(texts)) == 2
    assert all('<li id="c">1</li>' in text for text in texts)


async def test_a_string_payload_goes_as_is_and_other_payloads_are_dropped() -> None:
    from django_ws import broadcast

    async with WebSocketTestClient().connect(stream_path("board", "turbo")) as page:
        await broadcast("board", {"not": "a fragment"})
        await broadcast("board", '<turbo-stream action="refresh"></turbo-stream>')
        assert await page.receive_text() == '<turbo-stream action="refresh"></turbo-stream>'


async def test_what_the_page_sends_is_ignored() -> None:
    async with WebSocketTestClient().connect(stream_path("board")) as page:
        await page.send_json({"hello": 1})
        await page.assert_nothing_received(timeout=0.2)


# History ---------------------------------------------------------------------


def render_element(name: str, flavor: str) -> str:
    request = RequestFactory().get("/page")
    return Template(
        '{% load django_ws %}{% ws_stream name client=flavor %}'
    ).render(Context({"name": name, "flavor": flavor, "request": request}))


def connect_path(element: str) -> tuple[str, str]:
    """Return the path and query string an element connects to."""
    url = element.split('ws-connect="')[-1].split('src="')[-1].split('"')[0]
    url = url.replace("&amp;", "&").replace("ws://testserver", "")
    path, _, query = url.partition("?")
    return path, query


async def test_the_elements_connect_to_the_signed_stream(settings: Any) -> None:
    htmx = await sync_to_async(render_element)("board", "htmx")
    turbo = await sync_to_async(render_element)("board", "turbo")
    assert htmx.startswith('<div id="ws-stream-')
    assert ' hidden hx-ext="ws" ws-connect="/ws/django-ws/stream/htmx/' in htmx
    assert '<turbo-stream-source id="ws-stream-' in turbo
    assert 'src="ws://testserver/ws/django-ws/stream/turbo/' in turbo
    assert "ws_since" not in htmx  # "board" keeps no history
    path, _ = connect_path(htmx)
    assert verify_stream(path.rsplit("/", 1)[1]) == "board"


def test_turbo_without_the_request_in_the_context_says_what_to_add() -> None:
    with pytest.raises(ImproperlyConfigured, match="context_processors.request"):
        Template('{% load django_ws %}{% ws_stream "b" client="turbo" %}').render(Context())


@pytest.mark.parametrize("flavor", ["htmx", "turbo"])
async def test_a_change_between_render_and_connect_is_not_lost(flavor: str) -> None:
    name = f"kept:{flavor}"
    await broadcast_fragment(name, "append", target="cards", html="before the render")
    element = await sync_to_async(render_element)(name, flavor)
    path, query = connect_path(element)
    assert '"kept:' in unquote(query)
    await broadcast_fragment(name, "append", target="cards", html="after the render")
    async with WebSocketTestClient().connect(path, query_string=query) as page:
        text = await page.receive_text()
        assert "after the render" in text
        await broadcast_fragment(name, "append", target="cards", html="live")
        assert "live" in await page.receive_text()


async def test_an_unrecoverable_position_reloads_the_page() -> None:
    element = await sync_to_async(render_element)("kept:gone", "htmx")
    path, query = connect_path(element)
    query = query.replace("%22%2C0%5D", "%22%2C99%5D")  # ahead of the group
    async with WebSocketTestClient().connect(path, query_string=query) as page:
        assert await page.receive_text() == (
            f'<div hx-swap-oob="beforeend:#{element.split(chr(34))[1]}">'
            '<meta http-equiv="refresh" content="0"></div>'
        )


# Like any route ----------------------------------------------------------------


async def test_the_origin_check_applies_to_the_stream_route() -> None:
    client = WebSocketTestClient()
    async with client.connect(
        stream_path("board"), headers=[("origin", "https://evil.example")]
    ) as ws:
        assert ws.status == 403
    async with client.connect(
        stream_path("board"), headers=[("origin", "http://testserver")]
    ) as ws:
        assert ws.accepted


@pytest.mark.django_db
async def test_ws_middleware_runs_on_the_stream_route(settings: Any) -> None:
    settings.WS_MIDDLEWARE = ["django_ws.middleware.LoginRequiredMiddleware"]
    client = WebSocketTestClient()
    async with client.connect(stream_path("board")) as ws:
        assert ws.status == 403
    user = await sync_to_async(User.objects.create_user)("ann")
    await client.force_login(user)
    async with client.connect(stream_path("board")) as ws:
        assert ws.accepted
