"""ROOT_WS_URLCONF of the core end-to-end tests: one handler per behaviour."""

from __future__ import annotations

import asyncio
from typing import Any

from django.urls import path, re_path

from django_ws import WebSocketHandler


class Echo(WebSocketHandler):
    """JSON back as ``{"echo": ...}``; binary frames back as they came."""

    async def on_message(self, data: Any) -> Any:
        if isinstance(data, bytes):
            await self.send_bytes(data)
            return None
        return {"echo": data}


class Burst(WebSocketHandler):
    """Send ``count`` numbered frames without awaiting one, then ``"done"``."""

    async def on_message(self, data: Any) -> None:
        for n in range(data["count"]):
            self.send({"n": n, "pad": data.get("pad", "")})
        self.send_text("done")


class Arguments(WebSocketHandler):
    async def on_open(self) -> None:
        request = self.request
        self.send(
            {
                "args": list(self.args),
                "kwargs": self.kwargs,
                "path": request.path,
                "query": request.GET.get("q"),
                "cookie": request.COOKIES.get("flavour"),
            }
        )


class Crash(WebSocketHandler):
    async def on_message(self, data: Any) -> None:
        raise RuntimeError("handler crashed on purpose")


class Versioned(WebSocketHandler):
    subprotocols = ("chat.v2", "chat.v1")
    accept_headers = [("X-Served-By", "django-ws")]

    async def on_open(self) -> None:
        self.send({"subprotocol": self.subprotocol})


class Stream(WebSocketHandler):
    """Send as fast as the client takes it, until the client vanishes."""

    async def on_open(self) -> None:
        self.start_task("stream", self.stream)

    async def stream(self) -> None:
        for n in range(1_000_000):
            await self.send({"n": n, "pad": "x" * 1000})
            await asyncio.sleep(0)

    async def on_close(self) -> None:
        print(f"stream closed with {self.close_code}", flush=True)


urlpatterns = [
    path("echo", Echo),
    path("burst", Burst),
    path("rooms/<int:room>/<slug:name>", Arguments),
    re_path(r"^items/(\d+)$", Arguments),
    path("crash", Crash),
    path("proto", Versioned),
    path("stream", Stream),
]
