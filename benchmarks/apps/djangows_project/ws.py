"""The decorator form (``@ws_route``), autodiscovered by django-ws: ``/dsl/...``."""

from __future__ import annotations

from typing import Any

import django_ws
from django_ws.decorators import ws_route


@ws_route("dsl/echo")
async def echo(ws: Any, data: Any) -> Any:
    return data


@ws_route("dsl/trigger")
async def trigger(ws: Any, data: Any) -> Any:
    if data.get("type") == "broadcast":
        await django_ws.broadcast("room", data)
        return None
    return data


room = ws_route("dsl/room")


@room.on_open
async def join(ws: Any) -> None:
    await ws.join("room")


@room.on_message
async def relay(ws: Any, data: Any) -> Any:
    if data.get("type") == "broadcast":
        await django_ws.broadcast("room", data)
        return None
    return data
