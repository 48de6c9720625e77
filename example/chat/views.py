"""The chat page. It is open to everyone: the socket decides who may chat."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

import django_ws


def room(request: HttpRequest, room: str) -> HttpResponse:
    socket_path = django_ws.reverse("chat", kwargs={"room": room})
    return render(request, "chat/room.html", {"room": room, "socket_path": socket_path})
