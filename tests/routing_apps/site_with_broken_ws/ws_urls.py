"""A ws urlconf that exists but imports a module that does not."""

from __future__ import annotations

import tests.routing_apps.no_such_module  # noqa: F401

urlpatterns: list[object] = []
