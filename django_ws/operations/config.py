"""The operations settings: metrics, live view, connection limits, client address.

Read lazily (never at import), validated with ``ImproperlyConfigured`` messages
that say what to change, cleared with the other ``WS_*`` settings.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..conf import clears_on_settings_change

_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]+$")


@dataclass(frozen=True)
class OperationsSettings:
    """What ``WS_METRICS``, ``WS_LIVE_VIEW`` and the connection limits ask for."""

    metrics: bool = False
    live_view: bool = False
    max_connections_per_user: int | None = None
    max_connections_per_ip: int | None = None
    #: The ``request.META`` key of ``WS_CLIENT_IP_HEADER`` (``HTTP_X_FORWARDED_FOR``).
    client_ip_meta_key: str | None = None
    live_view_sample: int = 500
    ttl: float = 15.0

    @property
    def limits(self) -> bool:
        """Whether any connection limit is set."""
        return bool(self.max_connections_per_user or self.max_connections_per_ip)

    @property
    def active(self) -> bool:
        """Whether connections are tracked at all."""
        return self.metrics or self.live_view or self.limits


def metrics_installed() -> bool:
    """Return whether ``prometheus_client`` (the ``metrics`` extra) can be imported."""
    return importlib.util.find_spec("prometheus_client") is not None


def _limit(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ImproperlyConfigured(
            f"{name} must be a positive whole number of sockets, or None for no "
            f"limit; got {value!r}."
        )
    return value


def _switch(name: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ImproperlyConfigured(
            f"{name} must be True, False or None (automatic), got {value!r}."
        )
    return value


def _metrics(value: Any) -> bool:
    installed = metrics_installed()
    wanted = _switch("WS_METRICS", value, installed)
    if wanted and not installed:
        raise ImproperlyConfigured(
            "WS_METRICS is True but prometheus_client is not installed: "
            "pip install 'django-ws[metrics]', or set WS_METRICS = False."
        )
    return wanted


def _header(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _HEADER_NAME.match(value):
        raise ImproperlyConfigured(
            "WS_CLIENT_IP_HEADER must be the name of the header your proxy sets, "
            f"such as 'X-Forwarded-For' or 'X-Real-IP', or None; got {value!r}."
        )
    return "HTTP_" + value.upper().replace("-", "_")


def _positive(name: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive number, got {value!r}.")
    return value


@functools.lru_cache(maxsize=None)
def get_operations_settings() -> OperationsSettings:
    """Return the validated operations settings (see ``docs/operations.md``)."""
    read = functools.partial(getattr, settings)
    admin_installed = apps.is_installed("django.contrib.admin") and apps.is_installed(
        "django_ws"
    )
    return OperationsSettings(
        metrics=_metrics(read("WS_METRICS", None)),
        live_view=_switch("WS_LIVE_VIEW", read("WS_LIVE_VIEW", None), admin_installed),
        max_connections_per_user=_limit(
            "WS_MAX_CONNECTIONS_PER_USER", read("WS_MAX_CONNECTIONS_PER_USER", None)
        ),
        max_connections_per_ip=_limit(
            "WS_MAX_CONNECTIONS_PER_IP", read("WS_MAX_CONNECTIONS_PER_IP", None)
        ),
        client_ip_meta_key=_header(read("WS_CLIENT_IP_HEADER", None)),
        live_view_sample=int(
            _positive("WS_LIVE_VIEW_SAMPLE", read("WS_LIVE_VIEW_SAMPLE", 500))
        ),
        ttl=float(_positive("WS_OPERATIONS_TTL", read("WS_OPERATIONS_TTL", 15))),
    )


clears_on_settings_change(get_operations_settings.cache_clear)
