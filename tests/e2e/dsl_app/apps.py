from __future__ import annotations

from django.apps import AppConfig


class DslAppConfig(AppConfig):
    name = "tests.e2e.dsl_app"
    label = "dsl_app"
