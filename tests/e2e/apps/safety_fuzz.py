"""The echo handler that the fuzz test throws bad input at (``ROOT_WS_URLCONF``)."""

from __future__ import annotations

from typing import Any

from django.urls import path

from django_ws import WebSocketHandler


class FuzzEcho(WebSocketHandler):
    """Text frames: the decoded JSON back as ``{"echo": ...}``; binary frames as is."""

    async def on_message(self, data: Any) -> Any:
        if isinstance(data, bytes):
            await self.send_bytes(data)
            return None
        return {"echo": data}


urlpatterns = [path("safety/fuzz", FuzzEcho)]
