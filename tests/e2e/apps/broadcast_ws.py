"""A chat room for the broadcast end-to-end tests (``ROOT_WS_URLCONF``).

The same room in both forms: the ``Room`` subclass at ``/room/<name>`` and
``ws_route`` functions at ``/dsl/<name>``; members of either share the group
``<name>``. Messages are commands: ``{"say": text}`` broadcasts ``{"text": text}``
and answers ``{"ack": text}`` (or ``{"error": "broadcast failed"}``),
``{"ping": n}`` answers ``{"pong": n}``, ``{"leave": true}`` leaves the group,
``{"presence": true}`` answers the group's presence.
"""

from __future__ import annotations

from typing import Any

from django.urls import include, path

import django_ws
from django_ws import WebSocketHandler, ws_route
from django_ws.decorators.registry import RouteRegistry


async def opened(ws: WebSocketHandler, name: str) -> None:
    await ws.join(name)
    await ws.send({"joined": name})


async def command(ws: WebSocketHandler, data: dict[str, Any], name: str) -> None:
    if "say" in data:
        exclude = ws if data.get("exclude_me") else None
        try:
            await django_ws.broadcast(name, {"text": data["say"]}, exclude=exclude)
        except django_ws.BroadcastError:
            await ws.send({"error": "broadcast failed"})
        else:
            await ws.send({"ack": data["say"]})
    elif "ping" in data:
        await ws.send({"pong": data["ping"]})
    elif "leave" in data:
        await ws.leave(name)
        await ws.send({"left": name})
    elif "presence" in data:
        try:
            found = await django_ws.presence(name)
        except django_ws.BroadcastError:
            await ws.send({"error": "presence failed"})
        else:
            await ws.send({"count": found.count, "users": found.users})


class Room(WebSocketHandler):
    async def on_open(self) -> None:
        await opened(self, self.kwargs["name"])

    async def on_message(self, data: Any) -> None:
        await command(self, data, self.kwargs["name"])


registry = RouteRegistry()
dsl_room = ws_route("dsl/<str:name>", registry=registry)


@dsl_room.on_open
async def dsl_opened(ws: WebSocketHandler, name: str) -> None:
    await opened(ws, name)


@dsl_room.on_message
async def dsl_command(ws: WebSocketHandler, data: Any, name: str) -> None:
    await command(ws, data, name)


urlpatterns = [
    path("room/<str:name>", Room),
    path("", include(registry.urlpatterns)),
]
