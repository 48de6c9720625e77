"""Helpers for the core tests: an isolated application per test.

``client_for`` builds an application over a urlconf made in the test and an empty
route registry, so no test sees another test's routes. The tests drive it with
``django_ws.testing``, the client users test with.
"""

from __future__ import annotations

import itertools
from types import ModuleType
from typing import Any

from asgiref.typing import ASGISendEvent
from django.urls import path

from django_ws import WebSocketApplication, get_websocket_application
from django_ws.decorators.registry import RouteRegistry
from django_ws.testing import WebSocketTestClient, WebSocketTestConnection

_names = itertools.count()


def urlconf(*patterns: Any) -> ModuleType:
    """Return a fresh ws urlconf module holding ``patterns``."""
    module = ModuleType(f"tests.core_support.urlconf_{next(_names)}")
    module.urlpatterns = list(patterns)  # type: ignore[attr-defined]
    return module


def app_for(*patterns: Any, http_app: Any = None) -> WebSocketApplication:
    """Return an application routing ``patterns`` only (no ``@ws_route`` routes)."""
    if http_app is None:
        http_app = _no_http
    return get_websocket_application(
        http_app, urlconf=urlconf(*patterns), registry=RouteRegistry()
    )


def client_for(*patterns: Any) -> WebSocketTestClient:
    """Return a test client for an application routing ``patterns``."""
    return WebSocketTestClient(app_for(*patterns))


def client(handler: type, route: str = "ws") -> WebSocketTestClient:
    """Return a test client with ``handler`` served at ``/<route>``."""
    return client_for(path(route, handler))


async def _no_http(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError(f"The HTTP app was called with a {scope['type']} scope")


def frames(connection: WebSocketTestConnection) -> list[ASGISendEvent]:
    """Return the ``websocket.send`` events the application sent on ``connection``."""
    return [event for event in connection.events if event["type"] == "websocket.send"]
