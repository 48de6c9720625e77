"""The subclass form: ``WebSocketHandler`` subclasses."""

from __future__ import annotations

from typing import Any

import django_ws
from django_ws import WebSocketHandler


class EchoSocket(WebSocketHandler):
    async def on_message(self, data: Any) -> Any:
        return data


class TriggerSocket(WebSocketHandler):
    async def on_message(self, data: Any) -> Any:
        if data.get("type") == "broadcast":
            await django_ws.broadcast("room", data)
            return None
        return data


class RoomSocket(TriggerSocket):
    async def on_open(self) -> None:
        await self.join("room")
