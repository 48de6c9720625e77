"""The Django app: autodiscovers ``ws`` modules and registers system checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class DjangoWSConfig(AppConfig):
    name = "django_ws"
    verbose_name = "django-ws"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .conf import get_settings
        from .management import checks as _runserver  # noqa: F401  (django_ws.W002)
        from .operations import hooks
        from .operations.log_context import install as install_log_context
        from .operations.tracker import make_tracker

        hooks.provide_tracker(make_tracker)
        install_log_context()

        if get_settings().autodiscover:
            autodiscover_modules("ws")
