"""The Origin check: cross-site WebSocket hijacking is CSRF for sockets.

Browsers always send ``Origin`` on a WebSocket handshake and no page can forge it,
so comparing it with the request's own origin (scheme and a host valid under
``ALLOWED_HOSTS``) or with ``WS_ALLOWED_ORIGINS`` (``CSRF_TRUSTED_ORIGINS``
syntax) stops other sites from opening sockets with a visitor's cookies. It is
the rule of Django's CSRF Origin check, with ``wss`` counted as ``https``.
Clients that are not browsers send no ``Origin`` and pass: they cannot carry a
visitor's cookies by accident.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.http import HttpRequest
from django.utils.http import is_same_domain

_SECURE_SCHEMES = ("https", "wss")


def validate_allowed_origins(origins: Iterable[str]) -> tuple[str, ...]:
    """Return ``origins`` if each is a valid entry, else raise ``ImproperlyConfigured``.

    An entry that can never equal a browser's ``Origin`` (no scheme, a path, a
    bare ``*``) would silently refuse the site it was meant to admit.
    """
    for origin in origins:
        try:
            parsed = urlsplit(origin)
        except ValueError:
            parsed = None
        netloc = parsed.netloc if parsed is not None else ""
        if netloc == "*":
            raise ImproperlyConfigured(
                f"WS_ALLOWED_ORIGINS contains {origin!r}, which would admit every web "
                "site. To turn the Origin check off, set WS_CHECK_ORIGIN = False "
                "instead (or check_origin=False on one route)."
            )
        if (
            parsed is None
            or not parsed.scheme
            or not netloc
            or parsed.path
            or parsed.query
            or ("*" in netloc and not netloc.startswith("*."))
            or "*" in netloc[1:]
        ):
            raise ImproperlyConfigured(
                f"WS_ALLOWED_ORIGINS entries are origins as browsers send them, "
                f"'scheme://host[:port]', or 'scheme://*.domain' for a domain and its "
                f"subdomains (the CSRF_TRUSTED_ORIGINS syntax); got {origin!r}."
            )
    return tuple(origins)


def _origin_in(origin: str, allowed_origins: Iterable[str]) -> bool:
    try:
        parsed = urlsplit(origin)
    except ValueError:
        return False
    for allowed in allowed_origins:
        allowed = allowed.lower()
        if "*" not in allowed:
            if origin == allowed:
                return True
            continue
        pattern = urlsplit(allowed)  # "https://*.example.com" -> ".example.com"
        if parsed.scheme == pattern.scheme and is_same_domain(
            parsed.netloc, pattern.netloc.lstrip("*")
        ):
            return True
    return False


def origin_allowed(request: HttpRequest, allowed_origins: Iterable[str]) -> bool:
    """Return whether the handshake's ``Origin`` header may open a socket."""
    origin = request.META.get("HTTP_ORIGIN")
    if origin is None:
        return True
    origin = origin.lower()
    try:
        host = request.get_host()
    except DisallowedHost:
        pass
    else:
        scheme = "https" if request.scheme in _SECURE_SCHEMES else "http"
        if origin == f"{scheme}://{host.lower()}":
            return True
    return _origin_in(origin, allowed_origins)
