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

from collections.abc import Iterable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost, ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host
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


def origin_allowed_by_headers(
    scope: Mapping[str, Any], allowed_origins: Iterable[str]
) -> bool | None:
    """Decide the Origin check from the handshake's headers alone, or return ``None``.

    Browsers send ``Origin`` on every handshake, and building the Django request to
    read it walks every header into ``META``: that cost more server CPU than the
    rest of a connection, and the request then stayed on the socket for its whole
    life. This gives ``origin_allowed``'s answer without the request, using
    Django's own host validation (``get_host``'s rule). Whatever it cannot decide
    exactly the same way (``USE_X_FORWARDED_HOST``, ``SECURE_PROXY_SSL_HEADER``, a
    missing or repeated ``Host``, a repeated ``Origin``) gives ``None``: ask
    ``origin_allowed`` with the request then.
    """
    origin = host = None
    for name, value in scope.get("headers", ()):
        if name == b"origin":
            if origin is not None:
                return None
            origin = value
        elif name == b"host":
            if host is not None:
                return None
            host = value
    if origin is None:
        return True
    if host is None:
        return None
    valid_hosts = _host_rules()
    if valid_hosts is None:
        return None
    origin_text = origin.decode("latin-1").lower()
    host_text = host.decode("latin-1")
    scheme = "https" if scope.get("scheme") in _SECURE_SCHEMES else "http"
    if origin_text == f"{scheme}://{host_text.lower()}":
        valid = valid_hosts.get(host_text)
        if valid is None:
            valid = _host_valid(host_text)
            if len(valid_hosts) >= _HOSTS_REMEMBERED:
                valid_hosts.clear()
            valid_hosts[host_text] = valid
        if valid:
            return True
    return _origin_in(origin_text, allowed_origins)


#: How many ``Host`` values the header check remembers the validity of.
_HOSTS_REMEMBERED = 256
#: ``Host`` value -> valid under ``ALLOWED_HOSTS``; ``None`` until first use, and
#: ``False`` while a proxy setting leaves the decision to the request.
_valid_hosts: dict[str, bool] | Literal[False] | None = None


def _host_rules() -> dict[str, bool] | None:
    """The remembered host validity, or ``None`` if the request must decide."""
    global _valid_hosts
    if _valid_hosts is None:
        proxied = settings.USE_X_FORWARDED_HOST or settings.SECURE_PROXY_SSL_HEADER
        _valid_hosts = False if proxied else {}
    return None if _valid_hosts is False else _valid_hosts


#: The settings that ``get_host`` and ``scheme`` read.
_HOST_SETTINGS = ("ALLOWED_HOSTS", "DEBUG", "USE_X_FORWARDED_HOST", "SECURE_PROXY_SSL_HEADER")


@receiver(setting_changed)
def _forget_host_rules(*, setting: str, **kwargs: Any) -> None:
    global _valid_hosts
    if setting in _HOST_SETTINGS:
        _valid_hosts = None


def _host_valid(host: str) -> bool:
    """Whether ``HttpRequest.get_host`` accepts ``host`` (same rule, no request)."""
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed_hosts)
