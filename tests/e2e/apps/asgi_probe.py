"""A raw ASGI app (no Django, no django-ws) that shows what a server does with each event.

Each path exercises one ASGI behaviour, and the app appends what it saw, as JSON
lines, to the file named by ``PROBE_EVENTS``; ``tests/e2e/probe_servers.py``
drives it under every server. It exists to tell a server's behaviour apart from
django-ws's.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any
from urllib.parse import parse_qs

Message = dict[str, Any]

# The send callables of the open /shutdown sockets, which the lifespan shutdown
# closes with 1001, as django-ws does.
OPEN_AT_SHUTDOWN: set[Any] = set()


def record(**fields: Any) -> None:
    path = os.environ.get("PROBE_EVENTS")
    if path:
        with open(path, "a") as events:
            events.write(json.dumps({"t": round(time.monotonic(), 3), **fields}) + "\n")


def describe_send(awaitable: Any) -> dict[str, Any]:
    """Step ``send(...)``'s awaitable once; say what it is and whether it suspended.

    ``next()``, not ``.send(None)``: the iterator protocol is all that ``await``
    promises, and some servers' awaitables are iterators without ``send``.
    """
    steps = awaitable.__await__()
    described: dict[str, Any] = {
        "type": type(awaitable).__module__ + "." + type(awaitable).__qualname__,
        "await_returns_self": steps is awaitable,
        "iterator_has_send": hasattr(steps, "send"),
        "iterator_has_throw": hasattr(steps, "throw"),
    }
    try:
        yielded = next(steps)
    except StopIteration:
        return {**described, "first_step": "finished", "rest": None}
    return {
        **described,
        "first_step": "suspended",
        "yielded": type(yielded).__name__,
        "yielded_is_the_awaitable": yielded is awaitable,
        "yielded_blocking_flag": getattr(yielded, "_asyncio_future_blocking", "absent"),
        "rest": (steps, yielded),
    }


async def finish(steps: Any, first: Any) -> None:
    """Drive a send that suspended on its first step to the end."""
    value = first
    while True:
        result = await _Yield(value)
        try:
            value = steps.send(result) if hasattr(steps, "send") else next(steps)
        except StopIteration:
            return


class _Yield:
    """Yield one value to the event loop (as a suspended coroutine would)."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self) -> Any:
        return (yield self.value)


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
    elif scope["type"] == "websocket":
        await websocket(scope, receive, send)
    else:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"probe"})


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        record(event=message["type"])
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for socket_send in list(OPEN_AT_SHUTDOWN):
                try:
                    await asyncio.wait_for(
                        socket_send({"type": "websocket.close", "code": 1001, "reason": "probe"}),
                        2,
                    )
                    record(event="closed 1001 at lifespan shutdown")
                except BaseException as error:  # noqa: BLE001 - recorded
                    record(event="close at lifespan shutdown failed", error=repr(error))
            await send({"type": "lifespan.shutdown.complete"})
            return


async def websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    connect = await receive()
    record(path=path, event=connect["type"])
    if path == "/deny":
        await send({"type": "websocket.close", "code": int(query.get("code", 1000))})
        return
    if path == "/deny-http":
        await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"nope"})
        return
    if path == "/headers":
        await send({"type": "websocket.accept", "headers": [(b"x-probe", b"accepted")]})
        await receive()
        return
    await send({"type": "websocket.accept"})
    handler = PATHS.get(path, echo)
    try:
        await handler(scope, query, receive, send)
    except asyncio.CancelledError:
        record(path=path, event="cancelled")
        if os.environ.get("PROBE_CLOSE_ON_CANCEL"):
            # Would a going-away close sent while being cancelled reach the client?
            try:
                await asyncio.wait_for(
                    send({"type": "websocket.close", "code": 1001, "reason": "cancelled"}), 1
                )
                record(path=path, event="closed 1001 on cancel")
            except BaseException as error:  # noqa: BLE001 - recorded
                record(path=path, event="close on cancel failed", error=repr(error))
        raise
    except BaseException as error:
        record(path=path, event="raised", error=repr(error))
        raise


async def echo(scope: Any, query: dict[str, str], receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record(path="/echo", event="disconnect", code=message.get("code"))
            return
        size = len(message.get("bytes") or message.get("text") or "")
        await send({"type": "websocket.send", "text": json.dumps({"size": size})})


async def info(scope: Any, query: dict[str, str], receive: Any, send: Any) -> None:
    """Report the scope, and how ``send()`` behaves when stepped by hand."""
    step = describe_send(send({"type": "websocket.send", "text": "stepped"}))
    rest = step.pop("rest")
    if rest is not None:
        # Finish it the way the event loop would: keep stepping what it yields.
        await finish(*rest)
    body = {
        "extensions": scope.get("extensions"),
        "asgi": scope.get("asgi"),
        "http_version": scope.get("http_version"),
        "scope_keys": sorted(scope),
        "send": step,
        "receive_type": type(receive).__name__,
        "loop": type(asyncio.get_running_loop()).__module__
        + "."
        + type(asyncio.get_running_loop()).__name__,
    }
    await send({"type": "websocket.send", "text": json.dumps(body)})
    await receive()


async def unawaited(scope: Any, query: dict[str, str], receive: Any, send: Any) -> None:
    """Sends started and never awaited; a background task that sleeps then sends."""
    for n in range(3):
        step = describe_send(send({"type": "websocket.send", "text": f"unawaited {n}"}))
        record(path="/unawaited", event="stepped", n=n, first=step["first_step"])
        # Dropped on purpose: a fire-and-forget send, stepped once.

    async def later() -> None:
        await asyncio.sleep(0.2)
        record(path="/unawaited", event="woke")
        await send({"type": "websocket.send", "text": "slept"})

    task = asyncio.get_running_loop().create_task(later())
    await receive()  # until the client leaves
    task.cancel()


async def ticks(scope: Any, query: dict[str, str], receive: Any, send: Any) -> None:
    """A background task sends a tick every 0.2 s while the app waits in receive()."""

    async def tick() -> None:
        for n in range(10):
            await asyncio.sleep(0.2)
            record(path="/ticks", event="tick", n=n)
            await send({"type": "websocket.send", "text": f"tick {n}"})

    task = asyncio.get_running_loop().create_task(tick())
    await receive()
    task.cancel()


async def close(scope: Any, query: dict[str, str], receive: Any, send: Any) -> None:
    message: Message = {"type": "websocket.close", "code": int(query["code"])}
    if "reason" in query:
        message["reason"] = query["reason"]
    await send(message)


async def flood(scope: Any, query: dict[str, str], receive: Any, send: Any) -> None:
    """Awaited sends of ``size`` bytes, ``count`` times, at a client that reads nothing."""
    count, size = int(query.get("count", 25600)), int(query.get("size", 4096))
    payload = "x" * size
    started = time.monotonic()
    slowest = 0.0
    for n in range(count):
        before = time.monotonic()
        await send({"type": "websocket.send", "text": payload})
        slowest = max(slowest, time.monotonic() - before)
        if n % 2560 == 0:
            record(path="/flood", event="progress", n=n, slowest=round(slowest, 3))
    record(
        path="/flood",
        event="done",
        seconds=round(time.monotonic() - started, 3),
        slowest=round(slowest, 3),
    )
    await receive()


async def shutdown(scope: Any, query: dict[str, str], receive: Any, send: Any) -> None:
    """Wait in receive() and record what the server hands the app at shutdown."""
    OPEN_AT_SHUTDOWN.add(send)
    while True:
        message = await receive()
        record(path="/shutdown", event=message["type"], code=message.get("code"),
               reason=message.get("reason"))
        if message["type"] == "websocket.disconnect":
            return


PATHS = {
    "/echo": echo,
    "/info": info,
    "/unawaited": unawaited,
    "/ticks": ticks,
    "/close": close,
    "/flood": flood,
    "/shutdown": shutdown,
}
