"""The Origin check: cross-site WebSocket hijacking is CSRF for sockets.

Browsers always send ``Origin`` on a WebSocket handshake and no page can forge it,
so comparing it with the request's host (valid under ``ALLOWED_HOSTS``) or with
``WS_ALLOWED_ORIGINS`` (``CSRF_TRUSTED_ORIGINS`` syntax) stops other sites from
opening sockets with a visitor's cookies. Clients that are not browsers send no
``Origin`` and pass: they cannot carry a visitor's cookies by accident.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest


def _matches(origin: str, allowed: str) -> bool:
    if "*" not in allowed:
        return origin == allowed.lower()
    parsed, pattern = urlsplit(origin), urlsplit(allowed.lower())
    suffix = pattern.netloc.split("*", 1)[1]  # "https://*.example.com" -> ".example.com"
    return parsed.scheme == pattern.scheme and (
        parsed.netloc.endswith(suffix) or parsed.netloc == suffix.lstrip(".")
    )


def origin_allowed(request: HttpRequest, allowed_origins: Iterable[str]) -> bool:
    """Return whether the handshake's ``Origin`` header may open a socket."""
    origin = request.META.get("HTTP_ORIGIN")
    if origin is None:
        return True
    origin = origin.lower()
    if any(_matches(origin, allowed) for allowed in allowed_origins):
        return True
    try:
        host = request.get_host()
    except DisallowedHost:
        return False
    return urlsplit(origin).netloc == host.lower()
