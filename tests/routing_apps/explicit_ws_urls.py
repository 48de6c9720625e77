"""A ws urlconf named by ROOT_WS_URLCONF: include(), namespaces and converters."""

from __future__ import annotations

from django.urls import include, path

from tests.routing_apps.handlers import Arguments

urlpatterns = [
    path("explicit", Arguments, name="explicit"),
    path("chat/", include("tests.routing_apps.chat_ws_urls", namespace="chat")),
    path(
        "api/<int:version>/",
        include([path("feed/<slug:topic>", Arguments, name="feed")]),
    ),
]
