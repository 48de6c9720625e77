"""The default ws urlconf of ``tests.routing_apps.site``: ROOT_URLCONF's sibling."""

from __future__ import annotations

from django.urls import path

from tests.routing_apps.handlers import Arguments

urlpatterns = [path("sibling/<int:n>", Arguments, name="sibling")]
