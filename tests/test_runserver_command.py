"""The ``runserver`` command's choices: which app it serves, static files, and W002.

Serving over the wire is tested in ``tests/e2e/test_runserver_e2e.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core import checks
from django.core.management import get_commands
from django.core.management.base import CommandError

import tests.asgi
from django_ws import WebSocketApplication
from django_ws.management.checks import check_runserver
from django_ws.management.commands.runserver import (
    FALLBACK,
    Command,
    load_asgi_application,
)

WITH_STATICFILES = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django_ws",
    "django.contrib.staticfiles",
]

W002 = checks.Warning(
    "manage.py runserver is django.contrib.staticfiles' WSGI server, which cannot "
    "serve WebSockets: every WebSocket handshake gets HTTP 404.",
    hint=(
        "List 'django_ws' before 'django.contrib.staticfiles' in INSTALLED_APPS; "
        "django-ws's runserver serves static files too."
    ),
    id="django_ws.W002",
)


def test_runserver_is_django_ws_when_it_is_installed() -> None:
    assert get_commands()["runserver"] == "django_ws"


def test_no_warning_when_django_ws_comes_before_staticfiles(settings: Any) -> None:
    settings.INSTALLED_APPS = WITH_STATICFILES
    assert get_commands()["runserver"] == "django_ws"
    assert check_runserver() == []


def test_warning_when_staticfiles_comes_first(settings: Any) -> None:
    settings.INSTALLED_APPS = ["django.contrib.staticfiles", *WITH_STATICFILES[:-1]]
    assert get_commands()["runserver"] == "django.contrib.staticfiles"
    assert check_runserver() == [W002]
    assert W002 in checks.run_checks(tags=["django_ws"])  # registered by the app


def test_serves_asgi_application_when_set(settings: Any) -> None:
    settings.ASGI_APPLICATION = "tests.asgi.application"
    assert load_asgi_application() == (tests.asgi.application, "tests.asgi.application")


def test_serves_the_asgi_module_next_to_root_urlconf() -> None:
    # tests.settings: ROOT_URLCONF = "tests.urls", and tests/asgi.py exists.
    assert load_asgi_application() == (tests.asgi.application, "tests.asgi.application")


def test_serves_a_websocket_application_without_an_asgi_module(settings: Any) -> None:
    settings.ROOT_URLCONF = "tests.browser.urls"  # no tests/browser/asgi.py
    application, origin = load_asgi_application()
    assert isinstance(application, WebSocketApplication)
    assert origin == FALLBACK == "django_ws.get_websocket_application()"


def test_asgi_application_that_cannot_be_imported_says_what_to_fix(settings: Any) -> None:
    settings.ASGI_APPLICATION = "tests.nowhere.application"
    with pytest.raises(CommandError) as error:
        load_asgi_application()
    assert str(error.value) == (
        "ASGI_APPLICATION is 'tests.nowhere.application', which cannot be imported "
        "(No module named 'tests.nowhere'). Point it at your asgi.py's application, "
        "e.g. 'mysite.asgi.application'."
    )


@pytest.mark.parametrize(
    ("debug", "options", "wrapped"),
    [
        (True, {"use_static_handler": True, "insecure_serving": False}, True),
        (False, {"use_static_handler": True, "insecure_serving": False}, False),
        (False, {"use_static_handler": True, "insecure_serving": True}, True),
        (True, {"use_static_handler": False, "insecure_serving": False}, False),
    ],
    ids=["debug", "no-debug", "insecure", "nostatic"],
)
def test_static_files_are_served_like_staticfiles_runserver(
    settings: Any, debug: bool, options: dict[str, bool], wrapped: bool
) -> None:
    settings.INSTALLED_APPS = WITH_STATICFILES
    settings.STATIC_URL = "/static/"
    settings.DEBUG = debug
    application, origin = Command().get_application(**options)
    assert origin == "tests.asgi.application"
    if wrapped:
        assert isinstance(application, ASGIStaticFilesHandler)
        assert application.application is tests.asgi.application
    else:
        assert application is tests.asgi.application


def test_static_files_are_not_served_without_staticfiles() -> None:
    application, _ = Command().get_application(use_static_handler=True, insecure_serving=True)
    assert application is tests.asgi.application
