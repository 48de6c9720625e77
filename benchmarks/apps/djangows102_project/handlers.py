"""django-ws 1.0.2 handlers. 1.0.2 has no groups, so ``/room`` keeps its
members in a module-level set, the way its README suggests doing it by hand."""

from __future__ import annotations

import json
from typing import Any

from django_ws import WebSocketHandler

members: set[WebSocketHandler] = set()


class EchoSocket(WebSocketHandler):
    async def on_message(self, data: Any) -> None:
        await self.send(data)


class TriggerSocket(WebSocketHandler):
    async def on_message(self, data: Any) -> None:
        if data.get("type") == "broadcast":
            message = {"type": "websocket.send", "text": json.dumps(data)}
            for member in list(members):
                await member._send(message)
        else:
            await self.send(data)


class RoomSocket(TriggerSocket):
    async def on_open(self) -> None:
        members.add(self)

    async def on_close(self) -> None:
        members.discard(self)
