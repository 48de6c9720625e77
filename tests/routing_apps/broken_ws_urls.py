"""A ws urlconf with a mistake: a pattern pointing to a Django view."""

from __future__ import annotations

from django.urls import path

from tests.routing_apps.handlers import Arguments, a_view

urlpatterns = [
    path("fine", Arguments),
    path("view", a_view),
]
