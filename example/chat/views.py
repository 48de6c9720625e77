"""The chat page. It is open to everyone: the socket decides who may chat."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

import django_ws

from .ws import group_of


def room(request: HttpRequest, room: str) -> HttpResponse:
    socket_path = django_ws.reverse("chat", kwargs={"room": room})
    group = group_of(room)
    try:
        # The room's position as the page is rendered: its socket offers it, so a
        # message broadcast before the socket joins is replayed rather than lost.
        positions = {group: list(django_ws.position_sync(group))}
    except django_ws.BroadcastError:
        positions = {}  # Redis is away: the page still works, from its join on
    return render(
        request,
        "chat/room.html",
        {"room": room, "socket_path": socket_path, "positions": positions},
    )
