"""python-socketio's AsyncServer, the peer with rooms and a Redis manager.

One Socket.IO endpoint; the route is the ``r`` query parameter (the loadgen's
``--protocol socketio`` puts the paths ``/echo``, ``/room`` and ``/trigger`` there):
``room`` joins the room "room"; every ``msg`` event is echoed back to its sender,
except ``{"type": "broadcast", ...}``, which is emitted to the room.
``SIO_BROADCAST=redis`` (with ``REDIS_URL``) uses ``AsyncRedisManager``, so an emit
reaches the room's members in every process.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs

import socketio

manager = (
    socketio.AsyncRedisManager(os.environ["REDIS_URL"])
    if os.environ.get("SIO_BROADCAST") == "redis"
    else None
)
sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager)
app = socketio.ASGIApp(sio)


@sio.event
async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
    route = parse_qs(environ.get("QUERY_STRING", "")).get("r", [""])[0]
    if route == "room":
        await sio.enter_room(sid, "room")


@sio.on("msg")
async def msg(sid: str, data: Any) -> None:
    if isinstance(data, dict) and data.get("type") == "broadcast":
        await sio.emit("msg", data, room="room")
    else:
        await sio.emit("msg", data, to=sid)
