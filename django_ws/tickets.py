"""Connection tickets: short-lived, single-use, signed tokens for the query string.

Clients that cannot send cookies or headers on a WebSocket handshake (pages on
another origin, mobile apps) fetch a ticket over authenticated HTTP and pass it as
``?ticket=...``. A ticket names a user, lives ``WS_TICKET_MAX_AGE`` seconds and is
spent on first use (recorded in Django's cache), so what travels in the URL is
never a long-lived secret.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from .conf import get_settings

SALT = "django_ws.tickets"


class InvalidTicket(Exception):
    """The ticket is malformed, tampered with, expired or already used."""


def issue_ticket(user: Any) -> str:
    """Return a ticket that admits ``user`` once, within ``WS_TICKET_MAX_AGE`` seconds."""
    return signing.dumps({"u": str(user.pk), "n": secrets.token_urlsafe(12)}, salt=SALT)


def redeem_ticket(ticket: str) -> Any:
    """Return the user a valid ticket names, spending it; raise ``InvalidTicket``."""
    max_age = get_settings().ticket_max_age
    try:
        payload = signing.loads(ticket, salt=SALT, max_age=max_age)
    except signing.SignatureExpired as error:
        raise InvalidTicket("ticket expired") from error
    except signing.BadSignature as error:
        raise InvalidTicket("ticket invalid") from error
    if not cache.add(f"django_ws:ticket:{payload['n']}", 1, timeout=max_age + 1):
        raise InvalidTicket("ticket already used")
    user_model = get_user_model()
    try:
        user = user_model._default_manager.get(pk=payload["u"])
    except (user_model.DoesNotExist, ValueError) as error:
        raise InvalidTicket("ticket names no user") from error
    if not getattr(user, "is_active", True):
        raise InvalidTicket("user inactive")
    return user


@never_cache
def ticket_view(request: HttpRequest) -> JsonResponse:
    """Issue a ticket to the logged-in user: ``{"ticket": ..., "expires_in": 30}``.

    Anonymous users get HTTP 403 ``{"error": "login required"}`` rather than a
    redirect to the login page, since the caller is a script, not a person.
    """
    if not request.user.is_authenticated:
        return JsonResponse({"error": "login required"}, status=403)
    return JsonResponse(
        {"ticket": issue_ticket(request.user), "expires_in": get_settings().ticket_max_age}
    )
