"""A ws urlconf with a mistake: a route pointing at a plain function, not a handler."""

from __future__ import annotations

from typing import Any

from django.urls import path


def not_a_handler(request: Any) -> None:
    """A Django view, not a WebSocket handler."""


urlpatterns = [path("chat/", not_a_handler)]
