"""Channels ``AsyncJsonWebsocketConsumer``s for the benchmark routes."""

from __future__ import annotations

from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class Echo(AsyncJsonWebsocketConsumer):
    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        await self.send_json(content)


class Trigger(AsyncJsonWebsocketConsumer):
    join = False

    async def connect(self) -> None:
        if self.join:
            await self.channel_layer.group_add("room", self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.join:
            await self.channel_layer.group_discard("room", self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if content.get("type") == "broadcast":
            await self.channel_layer.group_send(
                "room", {"type": "room.message", "data": content}
            )
        else:
            await self.send_json(content)

    async def room_message(self, event: dict[str, Any]) -> None:
        await self.send_json(event["data"])


class Room(Trigger):
    join = True
