"""Ready-made middleware for ``WS_MIDDLEWARE`` or a route's ``middleware=[...]``.

Each is built once with the next callable and keeps no per-connection state.
"""

from __future__ import annotations

import logging
from importlib import import_module
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.conf import settings

from .chain import Next
from .exceptions import DenyConnection
from .tickets import InvalidTicket, redeem_ticket

if TYPE_CHECKING:
    from .handler import WebSocketHandler

logger = logging.getLogger("django_ws")


def _get_user(request: Any) -> Any:
    from django.contrib import auth

    return auth.get_user(request)


class AuthMiddleware:
    """Set ``ws.request.session`` and ``ws.request.user`` from the session cookie.

    The seed README's ``AuthAsyncMiddleware``, supported: the session store is the
    project's ``SESSION_ENGINE`` and the user is loaded in a worker thread, so the
    event loop never blocks on the database. Without a session cookie the user is
    ``AnonymousUser`` with no database work at all.
    """

    def __init__(self, next: Next) -> None:
        self.next = next

    async def __call__(self, ws: WebSocketHandler) -> Any:
        await self.authenticate(ws)
        return await self.next(ws)

    async def authenticate(self, ws: WebSocketHandler) -> None:
        request = ws.request
        if not hasattr(request, "session"):
            store = import_module(settings.SESSION_ENGINE).SessionStore
            request.session = store(request.COOKIES.get(settings.SESSION_COOKIE_NAME))
        if not hasattr(request, "user"):
            if request.session.session_key is None:
                from django.contrib.auth.models import AnonymousUser

                request.user = AnonymousUser()
            else:
                request.user = await sync_to_async(_get_user)(request)


#: The seed README's name for the same middleware.
AuthAsyncMiddleware = AuthMiddleware


class LoginRequiredMiddleware(AuthMiddleware):
    """Refuse anonymous users with HTTP 403 before the socket is accepted."""

    async def __call__(self, ws: WebSocketHandler) -> Any:
        await self.authenticate(ws)
        if not ws.request.user.is_authenticated:
            raise DenyConnection(403, "login required")
        return await self.next(ws)


class TicketMiddleware:
    """Admit a connection by a ``?ticket=`` from ``django_ws.tickets.issue_ticket``.

    A valid ticket sets ``ws.request.user``; an expired, reused or tampered one is
    refused with HTTP 403. Without a ``ticket`` parameter the connection passes
    on unchanged (so cookie auth further in still works).
    """

    def __init__(self, next: Next) -> None:
        self.next = next

    async def __call__(self, ws: WebSocketHandler) -> Any:
        ticket = ws.request.GET.get("ticket")
        if ticket is not None:
            try:
                ws.request.user = await sync_to_async(redeem_ticket)(ticket)
            except InvalidTicket as error:
                logger.warning("Refused %r: %s", ws, error)
                raise DenyConnection(403, str(error)) from None
        return await self.next(ws)
