"""Routing: the ws urlconf from settings, Django's resolver features, refusals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import NoReverseMatch, path

import django_ws
from django_ws import WebSocketHandler, get_websocket_application
from django_ws.decorators.registry import RouteRegistry
from django_ws.routing import ws_urlconf_name
from django_ws.testing import WebSocketTestClient
from tests.core_support import app_for, client_for, urlconf
from tests.routing_apps.handlers import Arguments


def project_client() -> WebSocketTestClient:
    """A client for the application configured by the settings (no decorated routes)."""
    return WebSocketTestClient(get_websocket_application(registry=RouteRegistry()))


async def routed(ws_client: WebSocketTestClient, url: str) -> Any:
    async with ws_client.connect(url) as ws:
        assert ws.accepted, f"{url} was refused with HTTP {ws.status}"
        return await ws.receive_json()


# Where the ws urlconf comes from ----------------------------------------------


async def test_root_ws_urlconf_names_the_ws_urlconf(settings: Any) -> None:
    settings.ROOT_WS_URLCONF = "tests.routing_apps.explicit_ws_urls"
    assert await routed(project_client(), "/explicit") == {
        "path": "/explicit",
        "args": [],
        "kwargs": {},
    }


async def test_the_default_ws_urlconf_is_root_urlconfs_ws_urls_sibling(
    settings: Any,
) -> None:
    settings.ROOT_URLCONF = "tests.routing_apps.site.urls"
    assert ws_urlconf_name() == "tests.routing_apps.site.ws_urls"
    assert await routed(project_client(), "/sibling/3") == {
        "path": "/sibling/3",
        "args": [],
        "kwargs": {"n": 3},
    }


def test_root_ws_urlconf_wins_over_the_sibling(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.routing_apps.site.urls"
    settings.ROOT_WS_URLCONF = "tests.routing_apps.explicit_ws_urls"
    assert ws_urlconf_name() == "tests.routing_apps.explicit_ws_urls"


async def test_without_a_ws_urls_module_every_path_is_refused_with_404(
    settings: Any,
) -> None:
    settings.ROOT_URLCONF = "tests.routing_apps.site_without_ws.urls"
    async with project_client().connect("/anything") as ws:
        assert not ws.accepted
        assert ws.status == 404


def test_a_missing_explicit_root_ws_urlconf_is_improperly_configured(
    settings: Any,
) -> None:
    settings.ROOT_WS_URLCONF = "tests.routing_apps.no_such_ws_urls"
    with pytest.raises(ImproperlyConfigured) as excinfo:
        get_websocket_application(registry=RouteRegistry())
    assert str(excinfo.value) == (
        "ROOT_WS_URLCONF is 'tests.routing_apps.no_such_ws_urls', which cannot be "
        "imported (No module named 'tests.routing_apps.no_such_ws_urls'). Create that "
        "module with a `urlpatterns` list, or point ROOT_WS_URLCONF at the module that "
        "has one."
    )


def test_a_default_ws_urls_that_fails_to_import_is_not_silently_ignored(
    settings: Any,
) -> None:
    settings.ROOT_URLCONF = "tests.routing_apps.site_with_broken_ws.urls"
    with pytest.raises(
        ImproperlyConfigured,
        match="No module named 'tests.routing_apps.no_such_module'",
    ):
        get_websocket_application(registry=RouteRegistry())


def test_a_urlpattern_to_something_else_than_a_handler_is_improperly_configured() -> (
    None
):
    with pytest.raises(ImproperlyConfigured) as excinfo:
        get_websocket_application(
            urlconf="tests.routing_apps.broken_ws_urls", registry=RouteRegistry()
        )
    message = str(excinfo.value)
    assert message.startswith(
        "The ws urlpattern 'view' points to <function a_view at 0x"
    )
    assert message.endswith(
        ", which is not a WebSocketHandler subclass nor a @ws_route function. Point it "
        "at a handler class (path('ws', MySocket)) or decorate the function with "
        "@ws_route."
    )


def test_a_urlpattern_to_a_plain_class_is_improperly_configured() -> None:
    class NotAHandler:
        pass

    with pytest.raises(
        ImproperlyConfigured,
        match=r"The ws urlpattern 'plain' points to <class '.*NotAHandler'>",
    ):
        app_for(path("plain", NotAHandler))


# Django's URL features --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kwargs"),
    [
        ("/chat/lobby", {"room": "lobby"}),  # include() with a namespace
        ("/chat/archive/2024", {"year": "2024"}),  # re_path named group, included
        (
            "/api/2/feed/news",
            {"version": 2, "topic": "news"},
        ),  # converters on both levels
    ],
)
async def test_include_and_converters_route_with_their_kwargs(
    settings: Any, url: str, kwargs: dict[str, Any]
) -> None:
    settings.ROOT_WS_URLCONF = "tests.routing_apps.explicit_ws_urls"
    assert await routed(project_client(), url) == {
        "path": url,
        "args": [],
        "kwargs": kwargs,
    }


def test_reverse_finds_ws_routes_by_name_and_namespace(settings: Any) -> None:
    settings.ROOT_WS_URLCONF = "tests.routing_apps.explicit_ws_urls"
    assert django_ws.reverse("explicit") == "/explicit"
    assert django_ws.reverse("chat:room", kwargs={"room": "lobby"}) == "/chat/lobby"
    assert django_ws.reverse("chat:archive", args=["2024"]) == "/chat/archive/2024"
    assert (
        django_ws.reverse("feed", kwargs={"version": 2, "topic": "news"})
        == "/api/2/feed/news"
    )
    with pytest.raises(NoReverseMatch):
        django_ws.reverse("chat:nowhere")


def test_reverse_follows_the_settings(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.routing_apps.site.urls"
    assert django_ws.reverse("sibling", kwargs={"n": 5}) == "/sibling/5"


# Refusals and what reaches the HTTP app ----------------------------------------


async def test_an_unknown_path_is_refused_with_404() -> None:
    async with client_for(path("ws", Arguments)).connect("/nowhere") as ws:
        assert not ws.accepted
        assert ws.status == 404


async def test_an_unknown_path_is_refused_with_403_without_the_extension() -> None:
    async with client_for(path("ws", Arguments)).connect(
        "/nowhere", http_response_extension=False
    ) as ws:
        assert not ws.accepted
        assert ws.status == 403
        assert ws.close_code == 1008


async def test_a_websocket_scope_never_reaches_the_http_app() -> None:
    scopes: list[str] = []

    async def http_app(scope: Any, receive: Any, send: Any) -> None:
        scopes.append(scope["type"])

    app = app_for(path("ws", Arguments), http_app=http_app)
    async with WebSocketTestClient(app).connect("/nowhere") as ws:
        assert ws.status == 404
    async with WebSocketTestClient(app).connect("/ws") as ws:
        assert ws.accepted
    assert scopes == []

    await app({"type": "http", "path": "/page"}, None, None)
    assert scopes == ["http"]


async def test_http_goes_to_djangos_asgi_handler_by_default(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.urls"
    app = get_websocket_application(urlconf=urlconf(), registry=RouteRegistry())
    sent: list[dict[str, Any]] = []

    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "http.request", "body": b"", "more_body": False})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/http/",
        "raw_path": b"/http/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    await asyncio.wait_for(app(scope, inbox.get, send), 5)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert b"".join(m.get("body", b"") for m in sent[1:]) == b"ok"


# Built once -------------------------------------------------------------------


async def test_the_router_is_built_once_not_per_connection() -> None:
    app = app_for(path("ws", Arguments))
    router = app.router
    ws_client = WebSocketTestClient(app)
    for _ in range(3):
        async with ws_client.connect("/ws") as ws:
            assert ws.accepted
    assert app.router is router


async def test_the_router_is_rebuilt_when_the_urlconf_setting_changes(
    settings: Any,
) -> None:
    settings.ROOT_WS_URLCONF = "tests.routing_apps.explicit_ws_urls"
    app = get_websocket_application(registry=RouteRegistry())
    before = app.router
    assert app.router is before
    settings.ROOT_URLCONF = "tests.routing_apps.site.urls"
    del settings.ROOT_WS_URLCONF
    assert app.router is not before
    async with WebSocketTestClient(app).connect("/explicit") as ws:
        assert ws.status == 404
    assert await routed(WebSocketTestClient(app), "/sibling/1") == {
        "path": "/sibling/1",
        "args": [],
        "kwargs": {"n": 1},
    }


async def test_a_handler_subclass_routes_to_itself() -> None:
    class Base(WebSocketHandler):
        async def on_open(self) -> None:
            self.send({"class": type(self).__name__})

    class Child(Base):
        pass

    ws_client = client_for(path("base", Base), path("child", Child))
    assert await routed(ws_client, "/base") == {"class": "Base"}
    assert await routed(ws_client, "/child") == {"class": "Child"}
