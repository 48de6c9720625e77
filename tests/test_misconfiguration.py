"""Misconfiguration fails at startup with ImproperlyConfigured saying what to change."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import path

from django_ws import WebSocketHandler, get_websocket_application
from django_ws.decorators.registry import RouteRegistry
from tests.conftest import LiveServerFactory
from tests.core_support import app_for, urlconf

LAZY_APP = "tests.e2e.apps.safety_lazy_asgi:application"


class Echo(WebSocketHandler):
    async def on_message(self, data: Any) -> Any:
        return data


def startup_error() -> str:
    """Build the application as ``asgi.py`` does; return the error it raises."""
    with pytest.raises(ImproperlyConfigured) as excinfo:
        get_websocket_application(urlconf=urlconf(path("ws", Echo)), registry=RouteRegistry())
    return str(excinfo.value)


# Middleware -----------------------------------------------------------------------


def test_a_ws_middleware_entry_that_does_not_import(settings: Any) -> None:
    settings.WS_MIDDLEWARE = ["myproject.missing.Middleware"]
    assert startup_error() == (
        "WS_MIDDLEWARE names 'myproject.missing.Middleware', which cannot be imported "
        "(No module named 'myproject'). Fix the dotted path or remove the entry."
    )


def test_a_ws_middleware_entry_that_is_not_callable(settings: Any) -> None:
    settings.WS_MIDDLEWARE = ["django_ws.status.WS_1000_NORMAL_CLOSURE"]
    assert startup_error() == (
        "WS_MIDDLEWARE entry 1000 is not callable: a middleware is a class (or factory) "
        "taking the next callable, whose instances are called with the connection."
    )


def test_a_route_middleware_entry_that_does_not_import() -> None:
    class Guarded(WebSocketHandler):
        middleware = ["myproject.auth.Missing"]

    with pytest.raises(ImproperlyConfigured) as excinfo:
        app_for(path("ws", Guarded))
    assert str(excinfo.value) == (
        f"{Guarded.__qualname__}.middleware names 'myproject.auth.Missing', which cannot be imported "
        "(No module named 'myproject'). Fix the dotted path or remove the entry."
    )


# Routing --------------------------------------------------------------------------


def test_an_explicit_root_ws_urlconf_that_does_not_exist(settings: Any) -> None:
    settings.ROOT_WS_URLCONF = "myproject.ws_urls"
    with pytest.raises(ImproperlyConfigured) as excinfo:
        get_websocket_application(registry=RouteRegistry())
    assert str(excinfo.value) == (
        "ROOT_WS_URLCONF is 'myproject.ws_urls', which cannot be imported (No module "
        "named 'myproject'). Create that module with a `urlpatterns` list, or point "
        "ROOT_WS_URLCONF at the module that has one."
    )


def test_a_urlpattern_whose_target_is_not_a_handler() -> None:
    def chat_view(request: Any) -> None:
        pass

    with pytest.raises(ImproperlyConfigured) as excinfo:
        app_for(path("chat/", chat_view))
    assert str(excinfo.value) == (
        f"The ws urlpattern 'chat/' points to {chat_view!r}, which is not a "
        "WebSocketHandler subclass nor a @ws_route function. Point it at a handler "
        "class (path('ws', MySocket)) or decorate the function with @ws_route."
    )


# Setting values -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WS_MAX_MESSAGE_SIZE", "big", "WS_MAX_MESSAGE_SIZE must be a positive number, got 'big'."),
        ("WS_MAX_MESSAGE_SIZE", 0, "WS_MAX_MESSAGE_SIZE must be a positive number, got 0."),
        ("WS_MAX_MESSAGE_SIZE", True, "WS_MAX_MESSAGE_SIZE must be a positive number, got True."),
        ("WS_MAX_SEND_QUEUE", "1000", "WS_MAX_SEND_QUEUE must be a positive number, got '1000'."),
        (
            "WS_MAX_MESSAGES_PER_SECOND",
            0,
            "WS_MAX_MESSAGES_PER_SECOND must be a positive number or None to turn it off, got 0.",
        ),
        ("WS_CLOSE_TIMEOUT", -1, "WS_CLOSE_TIMEOUT must be a positive number, got -1."),
        ("WS_TICKET_MAX_AGE", None, "WS_TICKET_MAX_AGE must be a positive number, got None."),
        ("WS_CHECK_ORIGIN", "yes", "WS_CHECK_ORIGIN must be True or False, got 'yes'."),
        ("WS_AUTODISCOVER", 1, "WS_AUTODISCOVER must be True or False, got 1."),
        (
            "WS_MIDDLEWARE",
            "django_ws.middleware.AuthMiddleware",
            "WS_MIDDLEWARE must be a list of strings, got 'django_ws.middleware.AuthMiddleware'. "
            "Write WS_MIDDLEWARE = ['django_ws.middleware.AuthMiddleware'] for a single entry.",
        ),
        (
            "WS_ALLOWED_ORIGINS",
            ["example.com"],
            "WS_ALLOWED_ORIGINS entries are origins as browsers send them, "
            "'scheme://host[:port]', or 'scheme://*.domain' for a domain and its "
            "subdomains (the CSRF_TRUSTED_ORIGINS syntax); got 'example.com'.",
        ),
        (
            "WS_BROADCAST",
            {"LOCATION": "redis://localhost:6379/0"},
            "WS_BROADCAST must be a dict with a 'BACKEND' dotted path, e.g. "
            "{'BACKEND': 'django_ws.broadcast.MemoryBackend'}; "
            "got {'LOCATION': 'redis://localhost:6379/0'}.",
        ),
        (
            "WS_BROADCAST",
            {"BACKEND": "myproject.Backend"},
            "WS_BROADCAST['BACKEND'] is 'myproject.Backend', which cannot be imported "
            "(No module named 'myproject'). Use 'django_ws.broadcast.MemoryBackend', "
            "'django_ws.broadcast.RedisBackend' (pip install 'django-ws[redis]') or "
            "'django_ws.broadcast.PostgresBackend' (pip install 'django-ws[postgres]').",
        ),
        (
            "WS_BROADCAST",
            {"BACKEND": "django_ws.WebSocketHandler"},
            "WS_BROADCAST['BACKEND'] is 'django_ws.WebSocketHandler', which is not a "
            "broadcast backend (a subclass of django_ws.broadcast.BaseBackend).",
        ),
        (
            "WS_BROADCAST",
            {
                "BACKEND": "django_ws.broadcast.MemoryBackend",
                "HISTORY": {"room-*": {"SIZE": 200, "TTL": 0}},
            },
            "WS_BROADCAST['HISTORY']['room-*']['TTL'] must be a positive number of "
            "seconds, got 0.",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and value.startswith("WS_") else "",
)
def test_a_bad_setting_value(settings: Any, name: str, value: Any, message: str) -> None:
    setattr(settings, name, value)
    assert startup_error() == message


def test_manage_py_check_reports_the_same_error(settings: Any) -> None:
    settings.WS_MAX_MESSAGE_SIZE = "big"
    errors = [m for m in checks.run_checks(tags=["django_ws"]) if m.id == "django_ws.E001"]
    assert [error.msg for error in errors] == [
        "WS_MAX_MESSAGE_SIZE must be a positive number, got 'big'."
    ]


def test_a_misspelled_setting_name_is_reported_with_the_right_one(settings: Any) -> None:
    settings.WS_MAX_MESSAGE_SZE = 65536
    settings.WS_FRONTEND_URL = "wss://example.com"  # the project's own: not reported
    warnings = [m for m in checks.run_checks(tags=["django_ws"]) if m.id == "django_ws.W012"]
    assert [(w.msg, w.hint) for w in warnings] == [
        (
            "WS_MAX_MESSAGE_SZE is not a django-ws setting, so it has no effect.",
            "Did you mean WS_MAX_MESSAGE_SIZE?",
        )
    ]


# Through a real server --------------------------------------------------------------


def exit_code(error: RuntimeError) -> int:
    """Return the exit code in ``LiveServer``'s "exited with code N" error."""
    found = re.search(r"exited with code (-?\d+)", str(error))
    assert found is not None, str(error)
    return int(found.group(1))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"WS_MAX_MESSAGE_SIZE": "big"},
            "ImproperlyConfigured: WS_MAX_MESSAGE_SIZE must be a positive number, got 'big'.",
        ),
        (
            {"WS_MIDDLEWARE": ["myproject.missing.Middleware"]},
            "ImproperlyConfigured: WS_MIDDLEWARE names 'myproject.missing.Middleware', "
            "which cannot be imported",
        ),
        (
            {"ROOT_WS_URLCONF": "tests.e2e.apps.safety_bad_urls"},
            "ImproperlyConfigured: The ws urlpattern 'chat/' points to",
        ),
    ],
    ids=["setting-value", "middleware", "urlpattern"],
)
def test_uvicorn_refuses_to_start_with_the_error_in_its_log(
    live_server_factory: LiveServerFactory, overrides: dict[str, Any], message: str
) -> None:
    """``asgi.py`` calls ``get_websocket_application()``: the import itself fails."""
    with pytest.raises(RuntimeError) as excinfo:
        live_server_factory(overrides)
    assert exit_code(excinfo.value) == 1
    assert message in str(excinfo.value)


def test_a_hand_built_application_fails_the_lifespan_startup(
    live_server_factory: LiveServerFactory,
) -> None:
    """Without ``get_websocket_application`` the check runs at lifespan startup."""
    with pytest.raises(RuntimeError) as excinfo:
        live_server_factory({"ROOT_WS_URLCONF": "myproject.ws_urls"}, app=LAZY_APP)
    log = str(excinfo.value)
    assert exit_code(excinfo.value) == 3
    assert "ERROR:    Application startup failed. Exiting." in log
    assert (
        "ImproperlyConfigured: ROOT_WS_URLCONF is 'myproject.ws_urls', which cannot be "
        "imported (No module named 'myproject')."
    ) in log
