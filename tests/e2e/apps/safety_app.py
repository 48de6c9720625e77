"""WebSocket routes for the safety end-to-end tests (``ROOT_WS_URLCONF``).

Handlers write what runs into the file named by the ``SAFETY_EVENTS_PATH``
setting, one ``<tag> <event>`` line each, so a test can prove which hooks ran
(and that none ran for a refused handshake). The tag is the ``tag`` query
parameter of the connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.urls import include, path

from django_ws import WebSocketHandler, broadcast, ws_route
from django_ws.decorators import RouteRegistry
from django_ws.middleware import LoginRequiredMiddleware, TicketMiddleware


def record(ws: WebSocketHandler, event: str) -> None:
    """Append ``<tag> <event>`` to the events file (a plain write: few bytes)."""
    events_path = getattr(settings, "SAFETY_EVENTS_PATH", None)
    if events_path:
        with open(events_path, "a") as events:
            events.write(f"{ws.request.GET.get('tag', '-')} {event}\n")


class RecordingMiddleware:
    """Record that the middleware chain was entered."""

    def __init__(self, next: Any) -> None:
        self.next = next

    async def __call__(self, ws: WebSocketHandler) -> Any:
        record(ws, "middleware")
        return await self.next(ws)


class ProbeSocket(WebSocketHandler):
    """Echo, recording every hook."""

    middleware = [RecordingMiddleware]

    async def on_open(self) -> None:
        record(self, "open")

    async def on_message(self, data: Any) -> Any:
        record(self, "message")
        return {"echo": data}

    async def on_close(self) -> None:
        record(self, "close")


class OpenProbeSocket(ProbeSocket):
    """The same, with the Origin check off for this route only."""

    check_origin = False


safety_routes = RouteRegistry()
open_function_route = ws_route(
    "safety/open-function", check_origin=False, registry=safety_routes
)


@open_function_route.on_message
async def open_function(ws: WebSocketHandler, data: Any) -> Any:
    return {"echo": data}


class WhoAmISocket(WebSocketHandler):
    """Tell the client who it is; used behind login-required and ticket middleware."""

    async def on_open(self) -> None:
        record(self, "open")
        await self.send({"user": self.request.user.get_username()})


class PrivateSocket(WhoAmISocket):
    middleware = [LoginRequiredMiddleware]


class TicketSocket(WhoAmISocket):
    middleware = [TicketMiddleware, LoginRequiredMiddleware]


class RateLimitedSocket(WebSocketHandler):
    """Echo, with a per-route rate limit of 2 messages a second."""

    max_messages_per_second = 2

    async def on_message(self, data: Any) -> Any:
        return {"echo": data}


class FeedSocket(WebSocketHandler):
    """Join the ``feed`` group; a reader that stops reading gets cut off."""

    async def on_open(self) -> None:
        await self.join("feed")
        record(self, "open")
        await self.send({"joined": "feed"})

    async def on_close(self) -> None:
        record(self, f"close {self.close_code}")


class FloodSocket(WebSocketHandler):
    """Broadcast ``count`` raw messages of ``size`` bytes to ``feed`` on request.

    Each message is a new string (``00000042xxx...``), so whatever a server kept
    queued would cost its full size in memory.
    """

    async def on_message(self, data: Any) -> Any:
        for number in range(data["count"]):
            await broadcast("feed", f"{number:08d}".ljust(data["size"], "x"), raw=True)
            if number % 100 == 99:
                await asyncio.sleep(0)  # let other connections be served meanwhile
        return {"flooded": data["count"]}


class ShutdownSocket(WebSocketHandler):
    """Run a task while open; record its cancellation and ``on_close``."""

    async def on_open(self) -> None:
        self.start_task("work", self.work())
        record(self, "open")
        await self.send({"open": True})

    async def work(self) -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            record(self, "task-cancelled")
            raise

    async def on_message(self, data: Any) -> Any:
        if data == "hang":  # a hook still running when the server stops
            record(self, "hanging")
            await asyncio.sleep(3600)
        return {"echo": data}

    async def on_close(self) -> None:
        record(self, f"close {self.close_code}")


urlpatterns = [
    path("safety/probe", ProbeSocket),
    path("safety/probe-open", OpenProbeSocket),
    path("safety/private", PrivateSocket),
    path("safety/ticket", TicketSocket),
    path("safety/rate", RateLimitedSocket),
    path("safety/feed", FeedSocket),
    path("safety/flood", FloodSocket),
    path("safety/shutdown", ShutdownSocket),
    path("", include(safety_routes.urlpatterns)),
]
