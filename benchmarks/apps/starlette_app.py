"""Starlette ``WebSocketEndpoint`` with ``encoding = "json"``.

Starlette has no groups, so ``/room`` keeps its members in a module-level set,
the way a Starlette user would write it by hand.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.applications import Starlette
from starlette.endpoints import WebSocketEndpoint
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

members: set[WebSocket] = set()


class Echo(WebSocketEndpoint):
    encoding = "json"

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        await websocket.send_json(data)


class Trigger(WebSocketEndpoint):
    encoding = "json"

    async def on_receive(self, websocket: WebSocket, data: Any) -> None:
        if data.get("type") == "broadcast":
            text = json.dumps(data)
            for member in list(members):
                await member.send_text(text)
        else:
            await websocket.send_json(data)


class Room(Trigger):
    async def on_connect(self, websocket: WebSocket) -> None:
        await websocket.accept()
        members.add(websocket)

    async def on_disconnect(self, websocket: WebSocket, close_code: int) -> None:
        members.discard(websocket)


app = Starlette(
    routes=[
        WebSocketRoute("/echo", Echo),
        WebSocketRoute("/room", Room),
        WebSocketRoute("/trigger", Trigger),
    ]
)
