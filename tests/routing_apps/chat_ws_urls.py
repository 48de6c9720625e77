"""An included ws urlconf with its own namespace."""

from __future__ import annotations

from django.urls import path, re_path

from tests.routing_apps.handlers import Arguments

app_name = "chat"

urlpatterns = [
    re_path(r"^archive/(?P<year>[0-9]{4})$", Arguments, name="archive"),
    path("<str:room>", Arguments, name="room"),
]
