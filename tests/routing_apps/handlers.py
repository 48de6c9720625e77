"""Handlers the routing test urlconfs point to."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse

from django_ws import WebSocketHandler


class Arguments(WebSocketHandler):
    """Send back where the connection was routed: path, args and kwargs."""

    async def on_open(self) -> None:
        self.send(
            {"path": self.request.path, "args": list(self.args), "kwargs": self.kwargs}
        )

    async def on_message(self, data: Any) -> Any:
        return {"echo": data}


def a_view(request: HttpRequest) -> HttpResponse:
    """A Django view, which is not a WebSocket handler."""
    return HttpResponse("not a socket")
