"""The issue's forms A to D as a user would paste them into an app's ``ws.py``.

No ws_urls module lists them: ``django_ws`` autodiscovers this module at startup.
Periods are short so that the tests see several ticks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from django.contrib.auth.models import User

from django_ws import WebSocketHandler
from django_ws.decorators import (
    background,
    on_message,
    periodic,
    use_middleware,
    ws_route,
)
from django_ws.middleware import AuthAsyncMiddleware, LoginRequiredMiddleware

from .state import record

PERIOD = 0.2


# A. a plain function under ws_route is the on_message hook; a returned value is sent
@ws_route("echo")
async def echo(ws, data):
    return data


# B. the hook named explicitly
@ws_route("shout")
@on_message
async def shout(ws, data):
    ws.send({"loud": data["text"].upper()})


# C. one route, several hooks; URL kwargs arrive as keyword arguments
room = ws_route("rooms/<slug:name>", name="room", middleware=[AuthAsyncMiddleware])


async def source(name: str) -> AsyncIterator[dict[str, Any]]:
    n = 0
    try:
        while True:
            yield {"feed": n, "room": name}
            n += 1
            await asyncio.sleep(PERIOD)
    finally:
        record("feed stopped", name)


@room.on_open
async def joined(ws, name):
    await ws.send({"joined": name, "user": str(ws.request.user)})


@room.on_message
async def said(ws, data, name):
    return {"said": data, "room": name}


@room.on_message(type="typing")
async def typing(ws, data, name):
    return {"typing": name}


@room.periodic(PERIOD)
async def tick(ws, name):
    record("tick", name)


@room.background("feed")
async def feed(ws, name):
    async for item in source(name):
        yield item


@room.on_close
async def left(ws, name):
    record("left", name)


# D. class decorator and method decorators
@ws_route("ticker/<str:symbol>")
@use_middleware(AuthAsyncMiddleware)
class Ticker(WebSocketHandler):
    @periodic(PERIOD)
    async def push(self):
        record("push", self.kwargs["symbol"])
        self.send({"symbol": self.kwargs["symbol"]})

    @background("feed")
    async def feed(self):
        try:
            yield {"user": str(self.request.user)}
            await asyncio.Event().wait()
        finally:
            record("ticker feed stopped", self.kwargs["symbol"])


# Per-route middleware: only this route requires a logged-in user.
@ws_route("private", middleware=[LoginRequiredMiddleware])
async def private(ws, data):
    return {"user": ws.request.user.get_username()}


# A sync hook runs in a worker thread, where the ORM works.
@ws_route("signup")
def signup(ws, data):
    user = User.objects.create_user(username=data["username"])
    ws.send({"created": user.username, "users": User.objects.count()})
