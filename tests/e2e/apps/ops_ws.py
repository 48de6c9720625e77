"""WebSocket routes for the operations end-to-end tests (``ROOT_WS_URLCONF``).

Hooks print ``ops-hook <name> <path>`` to the server's output, so a test can
tell which hooks ran (a refused socket runs none).
"""

from __future__ import annotations

import os
from typing import Any

from django.urls import path

from django_ws import WebSocketHandler, broadcast


def _hook(name: str, ws: WebSocketHandler) -> None:
    print(f"ops-hook {name} {ws.scope['path']}", flush=True)


class Echo(WebSocketHandler):
    """Echo every frame back, as it came."""

    async def on_open(self) -> None:
        _hook("on_open", self)

    async def on_message(self, data: Any) -> Any:
        if isinstance(data, bytes):
            await self.send_bytes(data)
            return None
        return data

    async def on_close(self) -> None:
        _hook("on_close", self)


class Limited(Echo):
    max_messages_per_second = 1


class Room(Echo):
    """Join ``ops-room``; a message is broadcast to the room."""

    async def on_open(self) -> None:
        await super().on_open()
        await self.join("ops-room")

    async def on_message(self, data: Any) -> None:
        await broadcast("ops-room", data)


class Who(Echo):
    """Answer who and where: the user, this connection and this process."""

    async def on_open(self) -> None:
        await super().on_open()
        await self.join("ops-who")

    async def on_message(self, data: Any) -> Any:
        user = self.presence_user
        return {
            "user": None if user is None else user.pk,
            "connection": self.connection_id,
            "pid": os.getpid(),
        }


urlpatterns = [
    path("ops/echo/<int:number>/", Echo),
    path("ops/limited/", Limited),
    path("ops/room/", Room),
    path("ops/who/", Who),
]
