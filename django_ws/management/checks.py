"""The system check that ``manage.py runserver`` is the one that serves WebSockets.

Django runs the ``runserver`` of the first app in ``INSTALLED_APPS`` that has one.
When ``django.contrib.staticfiles`` comes before ``django_ws`` its WSGI-only
``runserver`` wins and every WebSocket handshake gets a 404, with no hint why; this
check says so, at the start of every ``runserver`` and in ``manage.py check``.
"""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.core.management import get_commands

#: The app whose ``runserver`` serves HTTP only and so must come after django_ws.
STATICFILES = "django.contrib.staticfiles"


@checks.register("django_ws")
def check_runserver(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when staticfiles' ``runserver`` shadows django-ws's."""
    if get_commands().get("runserver") != STATICFILES:
        return []
    return [
        checks.Warning(
            "manage.py runserver is django.contrib.staticfiles' WSGI server, which "
            "cannot serve WebSockets: every WebSocket handshake gets HTTP 404.",
            hint=(
                "List 'django_ws' before 'django.contrib.staticfiles' in "
                "INSTALLED_APPS; django-ws's runserver serves static files too."
            ),
            id="django_ws.W002",
        )
    ]
