"""The ASGI application: WebSockets here, HTTP to Django, lifespan answered here.

Django's own ASGI handler refuses lifespan scopes, so this application answers
them: startup connects the broadcast backend, shutdown closes every open socket
with 1001 (each ``on_close`` runs once) before disconnecting it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import django
from asgiref.typing import (
    ASGIReceiveCallable,
    ASGISendCallable,
    Scope,
    WebSocketScope,
)

from . import status
from .broadcast import get_backend
from .chain import load_middleware
from .conf import get_settings
from .lifecycle import open_connections
from .handshake import refuse_handshake
from .operations import hooks as operations
from .operations.log_context import install as install_log_context
from .operations.tracker import make_tracker
from .routing import FROM_SETTINGS, Router, get_router

logger = logging.getLogger("django_ws")

operations.provide_tracker(make_tracker)  # the lifecycle cannot import it itself

#: Any ASGI 3 application, such as Django's ``ASGIHandler`` (typed loosely by
#: django-stubs, hence not ``asgiref.typing.ASGI3Application``).
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


class WebSocketApplication:
    """Route websocket scopes to handlers; send HTTP to ``http_app``."""

    def __init__(self, http_app: ASGIApp, *, urlconf: Any = FROM_SETTINGS, registry: Any = None) -> None:
        self.http_app = http_app
        self.urlconf = urlconf
        self.registry = registry
        self._router: Router | None = None

    @property
    def router(self) -> Router:
        """The router, kept here so a connection costs no lookup unless it went stale."""
        router = self._router
        if router is None or router.stale:
            router = self._router = get_router(self.urlconf, self.registry)
        return router

    def check(self) -> None:
        """Validate configuration now, raising ``ImproperlyConfigured`` with a fix."""
        settings = get_settings()
        for entry in settings.middleware:
            load_middleware(entry, where="WS_MIDDLEWARE")
        router = self.router
        for handler_class in router.handler_classes():
            for entry in handler_class.middleware:
                load_middleware(entry, where=f"{handler_class.__qualname__}.middleware")
        get_backend()
        operations.check()

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "websocket":
            # Resolved here rather than in a method of its own: an open socket keeps
            # every frame of its call chain alive, so each one costs memory per socket.
            match = self.router.resolve(scope["path"])
            if match is None:
                await self.refuse_unknown_path(scope, receive, send)
                return
            handler_class, args, kwargs = match
            await handler_class(scope, receive, send, args=args, kwargs=kwargs).run()
        elif scope["type"] == "http":
            await self.http_app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        else:
            raise ValueError(f"django-ws cannot handle ASGI scope type {scope['type']!r}")

    async def refuse_unknown_path(
        self, scope: WebSocketScope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        """Refuse a handshake for a path that no route matches with HTTP 404."""
        message = await receive()
        if message["type"] == "websocket.connect":
            logger.info("Refused WebSocket %s: no route", scope["path"])
            await refuse_handshake(scope, send, 404)
            if operations.tracker is not None:
                operations.tracker.refused_unrouted(404)

    async def lifespan(self, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        """Answer the lifespan protocol: start and stop the broadcast backend."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.check()
                    await get_backend().start()
                    await operations.startup()
                except Exception as error:
                    logger.exception("django-ws startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await close_all(status.WS_1001_GOING_AWAY, "Server shutting down")
                    await operations.shutdown()
                    await get_backend().stop()
                except Exception as error:
                    logger.exception("django-ws shutdown failed")
                    await send({"type": "lifespan.shutdown.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return


async def close_all(code: int, reason: str) -> None:
    """Close every open socket of this process and wait (bounded) for their lifecycles."""
    connections = list(open_connections)
    for connection in connections:
        connection.close(code, reason)
    lifecycles = {
        task
        for task in (connection.serving_task for connection in connections)
        if task is not None and not task.done()
    }
    if lifecycles:
        await asyncio.wait(lifecycles, timeout=get_settings().close_timeout)
    if open_connections:
        logger.warning("%d sockets still open after close timeout", len(open_connections))


def get_websocket_application(
    http_app: ASGIApp | None = None,
    *,
    urlconf: Any = FROM_SETTINGS,
    registry: Any = None,
) -> WebSocketApplication:
    """Return the project's ASGI application (use it in ``asgi.py``).

    HTTP goes to ``http_app`` (Django's ASGI handler by default). ``urlconf`` and
    ``registry`` replace ``ROOT_WS_URLCONF`` and the project's ``@ws_route``
    registry, for tests. Configuration is checked now, so mistakes fail at startup.
    """
    django.setup(set_prefix=False)
    install_log_context()
    if http_app is None:
        from django.core.handlers.asgi import ASGIHandler

        http_app = ASGIHandler()
    application = WebSocketApplication(http_app, urlconf=urlconf, registry=registry)
    application.check()
    return application
