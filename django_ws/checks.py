"""System checks for non-fatal misconfiguration (``manage.py check``)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured


@checks.register("django_ws")
def check_configuration(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report settings and routes that would fail at startup, with their fix."""
    from .application import WebSocketApplication

    messages: list[checks.CheckMessage] = []
    try:
        WebSocketApplication(http_app=None).check()  # type: ignore[arg-type]
    except ImproperlyConfigured as error:
        messages.append(checks.Error(str(error), id="django_ws.E001"))
    if getattr(settings, "WS_CHECK_ORIGIN", True) is False:
        messages.append(
            checks.Warning(
                "WS_CHECK_ORIGIN is False: any web site can open WebSockets to this "
                "project with its visitors' cookies.",
                hint="Remove WS_CHECK_ORIGIN, or list trusted sites in WS_ALLOWED_ORIGINS.",
                id="django_ws.W001",
            )
        )
    return messages
