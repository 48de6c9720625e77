"""The floor: a bare ASGI WebSocket app with no framework at all.

Routes (the same for every target):

- ``/echo``: each text message is decoded with ``json.loads`` and sent back with
  ``json.dumps``.
- ``/room``: joins the group "room"; a ``{"type": "broadcast", ...}`` message is
  sent to every member of the group, anything else is echoed.
- ``/trigger``: like ``/room`` without joining.

``RAW_BROADCAST=redis`` (with ``REDIS_URL``) publishes broadcasts on Redis and
delivers them from one subscriber per process; ``RAW_BROADCAST=postgres`` (with
``BENCH_POSTGRES_PORT``) sends each as one ``SELECT pg_notify`` on a psycopg
connection and delivers them from one LISTENing connection per process. The
default is in-process.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any, Awaitable, Callable

Send = Callable[[dict[str, Any]], Awaitable[None]]

GROUP = "room"
groups: dict[str, set[Send]] = {}
redis_client: Any = None
postgres_publisher: Any = None


async def deliver(group: str, text: str) -> None:
    message = {"type": "websocket.send", "text": text}
    for send in list(groups.get(group, ())):
        try:
            await send(message)
        except Exception:  # a member that is going away
            pass


async def broadcast(group: str, text: str) -> None:
    if redis_client is not None:
        await redis_client.publish(group, text)
    elif postgres_publisher is not None:
        await postgres_publisher.execute("SELECT pg_notify(%s, %s)", (group, text))
    else:
        await deliver(group, text)


async def subscribe(group: str, ready: asyncio.Event) -> None:
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(group)
    ready.set()
    async for message in pubsub.listen():
        if message["type"] == "message":
            await deliver(group, message["data"].decode())


def postgres_conninfo() -> str:
    port = os.environ["BENCH_POSTGRES_PORT"]
    return f"host=127.0.0.1 port={port} user=postgres dbname=postgres"


async def listen(group: str, ready: asyncio.Event) -> None:
    import psycopg

    async with await psycopg.AsyncConnection.connect(
        postgres_conninfo(), autocommit=True
    ) as listener:
        await listener.execute(f'LISTEN "{group}"')
        ready.set()
        async for notify in listener.notifies():
            await deliver(notify.channel, notify.payload)


async def lifespan(receive: Any, send: Send) -> None:
    global redis_client, postgres_publisher
    task = None
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if os.environ.get("RAW_BROADCAST") == "redis":
                import redis.asyncio

                redis_client = redis.asyncio.from_url(os.environ["REDIS_URL"])
                ready = asyncio.Event()
                task = asyncio.create_task(subscribe(GROUP, ready))
                await ready.wait()
            elif os.environ.get("RAW_BROADCAST") == "postgres":
                import psycopg

                postgres_publisher = await psycopg.AsyncConnection.connect(
                    postgres_conninfo(), autocommit=True
                )
                ready = asyncio.Event()
                task = asyncio.create_task(listen(GROUP, ready))
                await ready.wait()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if task is not None:
                task.cancel()
            if postgres_publisher is not None:
                await postgres_publisher.close()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def websocket(scope: dict[str, Any], receive: Any, send: Send) -> None:
    path = scope["path"]
    if path not in ("/echo", "/room", "/trigger"):
        await send({"type": "websocket.close", "code": 1008})
        return
    joined = False
    try:
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "websocket.connect":
                if path == "/room":
                    groups.setdefault(GROUP, set()).add(send)
                    joined = True
                await send({"type": "websocket.accept"})
            elif kind == "websocket.receive":
                data = json.loads(message["text"])
                if path != "/echo" and data.get("type") == "broadcast":
                    await broadcast(GROUP, json.dumps(data))
                else:
                    await send({"type": "websocket.send", "text": json.dumps(data)})
            elif kind == "websocket.disconnect":
                return
    finally:
        if joined:
            groups[GROUP].discard(send)


async def app(scope: dict[str, Any], receive: Any, send: Send) -> None:
    if scope["type"] == "websocket":
        await websocket(scope, receive, send)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
