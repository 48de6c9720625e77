"""WebSocket routes for the churn test: a busy handler, and a route reporting leaks.

``safety/churn`` joins two groups, starts two tasks and says so on open; it
crashes in ``on_open`` with ``?crash=open`` and in ``on_message`` on ``"crash"``.
``safety/stats`` answers ``"stats"`` with what this process still holds: open
connections, group memberships, live handler objects (after ``gc.collect()``) and
asyncio tasks, each not counting the stats connection itself.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from django.urls import path

from django_ws import WebSocketHandler
from django_ws.broadcast import get_backend
from django_ws.handler import open_connections


class ChurnSocket(WebSocketHandler):
    async def on_open(self) -> None:
        await self.join("churn")
        await self.join(f"churn-{id(self) % 10}")
        self.start_task("idle", asyncio.Event().wait)
        self.start_task("ticker", self.sleep_loop(self.tick, 0.05))
        if self.scope["query_string"] == b"crash=open":
            raise RuntimeError("churn: crash in on_open")
        await self.send_text("open")

    async def tick(self) -> None:
        await self.send_text("tick")

    async def on_message(self, data: Any) -> Any:
        if data == "crash":
            raise RuntimeError("churn: crash in on_message")
        return data


class StatsSocket(WebSocketHandler):
    async def on_message(self, data: Any) -> Any:
        gc.collect()
        handlers = [
            obj for obj in gc.get_objects() if isinstance(obj, WebSocketHandler) and obj is not self
        ]
        return {
            "open_connections": len(open_connections - {self}),
            "memberships": get_backend().member_count(),
            "groups": len(get_backend().groups),
            "handlers": len(handlers),
            "tasks": len(asyncio.all_tasks()),
        }


urlpatterns = [
    path("safety/churn", ChurnSocket),
    path("safety/stats", StatsSocket),
]
