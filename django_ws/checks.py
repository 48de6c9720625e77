"""System checks for non-fatal misconfiguration (``manage.py check``).

Ids here: E001 startup failures, W001 Origin check off, W010-W012 tickets' cache
and misspelled settings (``django_ws.management.checks`` has W002).
"""

from __future__ import annotations

import difflib
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
    if _uses_tickets() and _default_cache_is("DummyCache"):
        messages.append(
            checks.Warning(
                "TicketMiddleware is in use but the default cache is DummyCache, which "
                "remembers nothing: a ticket could be used again and again until it "
                "expires.",
                hint="Configure a real cache in CACHES['default'].",
                id="django_ws.W010",
            )
        )
    messages.extend(_misspelled_settings())
    return messages


@checks.register("django_ws", deploy=True)
def check_deployment(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report what is fine on one process and unsafe on several (``check --deploy``)."""
    if _uses_tickets() and _default_cache_is("LocMemCache"):
        return [
            checks.Warning(
                "TicketMiddleware records spent tickets in the default cache, which is "
                "LocMemCache: each server process has its own, so with several "
                "processes a ticket could be used once in each.",
                hint="Use a cache that processes share (Redis, Memcached, database).",
                id="django_ws.W011",
            )
        ]
    return []


def _uses_tickets() -> bool:
    from .chain import load_middleware
    from .conf import get_settings
    from .middleware import TicketMiddleware
    from .routing import get_router

    try:
        entries = list(get_settings().middleware)
        for handler_class in get_router().handler_classes():
            entries.extend(handler_class.middleware)
        factories = [load_middleware(entry, where="") for entry in entries]
    except ImproperlyConfigured:
        return False  # reported by check_configuration
    return any(
        isinstance(factory, type) and issubclass(factory, TicketMiddleware)
        for factory in factories
    )


def _default_cache_is(class_name: str) -> bool:
    from django.core.cache import caches

    return type(caches["default"]).__name__ == class_name


def _misspelled_settings() -> list[checks.CheckMessage]:
    """Warn about a ``WS_*`` setting that looks like a typo of one django-ws reads.

    A misspelled limit silently keeps its default, so ``WS_MAX_MESSAGE_SZE = 64``
    deserves a warning; unrelated ``WS_*`` settings of the project do not.
    """
    from dataclasses import fields

    from .conf import WebSocketSettings

    known = {f"WS_{field.name.upper()}" for field in fields(WebSocketSettings)}
    known.add("ROOT_WS_URLCONF")
    messages: list[checks.CheckMessage] = []
    for name in dir(settings):
        if name in known or not (name.startswith("WS_") or name.endswith("WS_URLCONF")):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        if close:
            messages.append(
                checks.Warning(
                    f"{name} is not a django-ws setting, so it has no effect.",
                    hint=f"Did you mean {close[0]}?",
                    id="django_ws.W012",
                )
            )
    return messages
