"""Ready-made middleware for ``WS_MIDDLEWARE`` or a route's ``middleware=[...]``.

Each is built once with the next callable and keeps no per-connection state.
"""

from __future__ import annotations

import functools
import logging
from importlib import import_module
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.utils.functional import SimpleLazyObject, cached_property

from .chain import Next
from .exceptions import DenyConnection
from .handshake import has_header
from .request import WebSocketRequest
from .tickets import InvalidTicket, redeem_ticket

if TYPE_CHECKING:
    from .handler import WebSocketHandler

logger = logging.getLogger("django_ws")


def _get_user(request: Any) -> Any:
    from django.contrib import auth

    return _as_in_a_request(auth.get_user, request)


# Django's own async twins that run the sync method in a thread (the ORM's and the
# cache's are sync_to_async underneath) or block the loop (the file store).
_THREAD_BACKED_SESSIONS = frozenset(
    f"django.contrib.sessions.backends.{name}"
    for name in ("base", "db", "cache", "cached_db", "file")
)
_THREAD_BACKED_AUTH = "django.contrib.auth.backends"


@functools.lru_cache(maxsize=None)
def _loads_without_a_thread(engine: str, backends: tuple[str, ...]) -> bool:
    """Return whether ``aget_user`` needs no thread with this store and these backends.

    Only then is awaiting Django's async API cheaper than one worker-thread call
    of the sync one: with Django's database or cache sessions or its model
    backend, ``aget_user`` makes one thread hop per lookup (two with database
    sessions) and would skip the stale-connection cleanup around them.
    """
    from django.contrib.auth import load_backend

    if _session_store(engine).aload.__module__ in _THREAD_BACKED_SESSIONS:
        return False
    return all(
        type(load_backend(path)).aget_user.__module__ != _THREAD_BACKED_AUTH
        for path in backends
    )


def _as_in_a_request(function: Callable[..., Any], *args: Any) -> Any:
    """Call ``function`` (in a worker thread) as Django runs a view's database work.

    Connections that are broken or older than ``CONN_MAX_AGE`` are closed before
    and after, as on ``request_started`` and ``request_finished``: without it, the
    worker thread would keep a connection that a database restart broke, and every
    later handshake would fail on it.
    """
    close_old_connections()
    try:
        return function(*args)
    finally:
        close_old_connections()


@functools.lru_cache(maxsize=None)
def _session_store(engine: str) -> Any:
    return import_module(engine).SessionStore


class _AnonymousRequest(WebSocketRequest):
    """The request of a handshake without a cookie, as the auth middleware leaves it.

    Its empty session and its ``AnonymousUser`` are made on first read, like
    Django's ``request.user``, but with no proxy object in between: most
    anonymous sockets never read either, and each object made is paid per socket.
    """

    # cached_property stores the value in the instance on first read, so setting
    # these later (a middleware further in) works as on any request.
    @cached_property
    def session(self) -> Any:  # type: ignore[override]
        return _session_store(settings.SESSION_ENGINE)()

    @cached_property
    def user(self) -> Any:  # type: ignore[override]
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser()


class AuthMiddleware:
    """Set ``ws.request.session`` and ``ws.request.user`` from the session cookie.

    The seed README's ``AuthAsyncMiddleware``, supported: the session store is the
    project's ``SESSION_ENGINE`` and the user is loaded in one worker-thread call,
    so the event loop never blocks on the database. A session store and
    authentication backends whose async methods need no thread (signed-cookie
    sessions and a backend with its own ``aget_user``) are awaited on the loop
    instead. Without a session cookie the user is ``AnonymousUser`` with no
    database work, no thread and no header parsing.
    """

    def __init__(self, next: Next) -> None:
        from django.contrib.auth.models import AnonymousUser

        self.next = next
        self.anonymous_user = AnonymousUser

    def __call__(self, ws: WebSocketHandler) -> Awaitable[Any]:
        # Not a coroutine of its own when there is nothing to await: an open socket
        # keeps every frame of its middleware chain alive. The chain awaits what
        # this returns either way.
        if not ws.has_request and not has_header(ws.scope, b"cookie"):
            # Most sockets: no cookie, and nothing before this read or set the
            # request. One object, with the session and user made on first read.
            ws.request = _AnonymousRequest(ws.scope)
            return self.next(ws)
        if self.needs_database(ws):
            return self._load_user_then_next(ws)
        return self.next(ws)

    async def _load_user_then_next(self, ws: WebSocketHandler) -> Any:
        await self.load_user(ws)
        return await self.next(ws)

    def needs_database(self, ws: WebSocketHandler) -> bool:
        """Set what needs no database now; return whether the user must be loaded."""
        request = ws.request
        # What a middleware before this one set is kept. vars() rather than
        # hasattr(): a lazy request answers a missing attribute with an exception.
        attributes = vars(request)
        if "session" in attributes or isinstance(request, _AnonymousRequest):
            session_key = request.session.session_key
        else:
            # No Cookie header at all (the scope is checked, not request.COOKIES,
            # which would make Django parse every header): no session key.
            cookie = (
                request.COOKIES.get(settings.SESSION_COOKIE_NAME)
                if has_header(ws.scope, b"cookie")
                else None
            )
            store = _session_store(settings.SESSION_ENGINE)
            if cookie is None:
                # An empty session, made on first use: most sockets never touch it.
                request.session = cast(Any, SimpleLazyObject(store))  # a SessionBase proxy
                session_key = None
            else:
                request.session = store(cookie)
                session_key = request.session.session_key
        if "user" in attributes or isinstance(request, _AnonymousRequest):
            return False
        if session_key is None:
            request.user = self.anonymous_user()
            return False
        return True

    async def load_user(self, ws: WebSocketHandler) -> None:
        if _loads_without_a_thread(
            settings.SESSION_ENGINE, tuple(settings.AUTHENTICATION_BACKENDS)
        ):
            from django.contrib import auth

            ws.request.user = await auth.aget_user(ws.request)
        else:
            ws.request.user = await sync_to_async(_get_user)(ws.request)


#: The seed README's name for the same middleware.
AuthAsyncMiddleware = AuthMiddleware


class LoginRequiredMiddleware(AuthMiddleware):
    """Refuse anonymous users with HTTP 403 before the socket is accepted."""

    async def __call__(self, ws: WebSocketHandler) -> Any:
        if self.needs_database(ws):
            await self.load_user(ws)
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
                ws.request.user = await sync_to_async(_as_in_a_request)(redeem_ticket, ticket)
            except InvalidTicket as error:
                logger.warning("Refused %r: %s", ws, error)
                raise DenyConnection(403, str(error)) from None
        return await self.next(ws)
