"""Chat rooms with the function-style DSL: one route, a hook per message type.

Only logged-in users may connect (``LoginRequiredMiddleware`` refuses the others
with HTTP 403 before the socket opens). Each room is a group; a message goes to
every member in every process, typing notices to everyone but the typist, and
each join or leave tells the room who is there.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.utils import timezone

from django_ws import broadcast, presence, ws_route
from django_ws.middleware import LoginRequiredMiddleware

MAX_TEXT = 500

room = ws_route(
    "ws/chat/<slug:room>",
    name="chat",
    middleware=[LoginRequiredMiddleware],
    max_message_size=4096,
    max_messages_per_second=20,
)


def group_of(room: str) -> str:
    return f"chat.{room}"


def usernames(user_ids: list[Any]) -> list[str]:
    users = get_user_model()._default_manager.filter(pk__in=user_ids)
    return sorted(user.get_username() for user in users)


async def announce_presence(room: str) -> None:
    """Tell the room how many sockets are in it, and which users (in every process)."""
    here = await presence(group_of(room))
    names = await sync_to_async(usernames)(here.users)
    await broadcast(group_of(room), {"type": "presence", "count": here.count, "users": names})


@room.on_open
async def joined(ws: Any, room: str) -> None:
    await ws.join(group_of(room))
    await ws.send({"type": "welcome", "room": room, "user": ws.request.user.get_username()})
    await announce_presence(room)


@room.on_message(type="say")
async def say(ws: Any, data: dict[str, Any], room: str) -> Any:
    text = str(data.get("text", "")).strip()[:MAX_TEXT]
    if not text:
        return {"type": "error", "error": "empty message"}
    await broadcast(
        group_of(room),
        {
            "type": "message",
            "user": ws.request.user.get_username(),
            "text": text,
            "time": timezone.now(),
        },
    )
    return None


@room.on_message(type="typing")
async def typing(ws: Any, data: dict[str, Any], room: str) -> None:
    await broadcast(
        group_of(room), {"type": "typing", "user": ws.request.user.get_username()}, exclude=ws
    )


@room.on_close
async def left(ws: Any, room: str) -> None:
    # The socket has already left its groups: the count no longer includes it.
    await announce_presence(room)
