"""No leaks: 10,000 connect / join / start_task / disconnect cycles against one server.

Each cycle opens a raw socket to a handler that joins two groups and starts two
tasks on open, then ends in one of five ways: a clean close, a TCP reset right
after open, a TCP reset before the handler even said it was open, a crash in
``on_message`` and a crash in ``on_open``. Afterwards the server itself reports
what it still holds.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
from collections import Counter
from typing import Any

from tests.conftest import LiveServerFactory
from tests.e2e.safety_raw_client import (
    OP_CLOSE,
    OP_TEXT,
    abort_writer,
    encode_frame,
    open_async,
    read_frame,
)
from tests.live_server import LiveServer

CYCLES = 10_000
CONCURRENCY = 50
CHURN_SETTINGS = {
    "ROOT_WS_URLCONF": "tests.e2e.apps.safety_churn",
    # 4,000 crash tracebacks would dominate the run; errors are still counted below.
    "LOGGING": {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"stderr": {"class": "logging.StreamHandler"}},
        "loggers": {"django_ws": {"handlers": ["stderr"], "level": "CRITICAL"}},
    },
}
KINDS = ("clean", "reset-after-open", "reset-at-once", "crash-in-message", "crash-in-open")


async def read_until_close(reader: asyncio.StreamReader) -> int:
    """Skip frames until the server's close frame; return its code."""
    while (frame := await read_frame(reader)).opcode != OP_CLOSE:
        pass
    return int(struct.unpack("!H", frame.payload[:2])[0])


async def cycle(port: int, kind: str) -> int | None:
    """Run one connection of ``kind``; return the server's close code if it sent one."""
    query = "?crash=open" if kind == "crash-in-open" else ""
    reader, writer = await open_async(port, f"/safety/churn{query}")
    try:
        if kind == "reset-at-once":
            abort_writer(writer)
            return None
        if kind == "crash-in-open":
            code = await read_until_close(reader)
        else:
            first = await read_frame(reader)
            assert (first.opcode, first.payload) in ((OP_TEXT, b"open"), (OP_TEXT, b"tick"))
            if kind == "reset-after-open":
                abort_writer(writer)
                return None
            if kind == "clean":  # the client closes; the server answers
                writer.write(encode_frame(OP_CLOSE, struct.pack("!H", 1000)))
                return await read_until_close(reader)
            writer.write(encode_frame(OP_TEXT, b'"crash"'))
            code = await read_until_close(reader)
        # The server closed: answer its close frame to complete the closing handshake.
        writer.write(encode_frame(OP_CLOSE, struct.pack("!H", code)))
        await writer.drain()
        return code
    finally:
        writer.close()


async def churn(port: int) -> Counter[tuple[str, int | None]]:
    """Run ``CYCLES`` cycles, ``CONCURRENCY`` at a time; count (kind, close code)."""
    outcomes: Counter[tuple[str, int | None]] = Counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(CYCLES):
        queue.put_nowait(number)

    async def worker() -> None:
        while not queue.empty():
            kind = KINDS[queue.get_nowait() % len(KINDS)]
            outcomes[kind, await asyncio.wait_for(cycle(port, kind), 10)] += 1

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return outcomes


async def server_stats(port: int) -> dict[str, Any]:
    reader, writer = await open_async(port, "/safety/stats")
    try:
        writer.write(encode_frame(OP_TEXT, b'"stats"'))
        frame = await asyncio.wait_for(read_frame(reader), 10)
        return dict(json.loads(frame.payload))
    finally:
        abort_writer(writer)


def open_fds(server: LiveServer) -> int:
    return len(os.listdir(f"/proc/{server.pid}/fd"))


async def settled_stats(server: LiveServer, baseline: dict[str, Any], timeout: float = 15) -> dict[str, Any]:
    """Poll the server until it is back to ``baseline`` or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        stats = {**await server_stats(server.port), "fds": open_fds(server)}
        if stats == baseline or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.2)


async def test_churn_leaves_no_handler_task_membership_or_socket_behind(
    live_server_factory: LiveServerFactory,
) -> None:
    server = live_server_factory(CHURN_SETTINGS)
    baseline = {**await server_stats(server.port), "fds": open_fds(server)}
    assert baseline["open_connections"] == baseline["memberships"] == baseline["handlers"] == 0

    started = time.monotonic()
    outcomes = await asyncio.wait_for(churn(server.port), 110)
    elapsed = time.monotonic() - started
    print(f"{CYCLES} cycles in {elapsed:.1f} s: {dict(outcomes)}")

    per_kind = CYCLES // len(KINDS)
    assert outcomes == {
        ("clean", 1000): per_kind,
        ("reset-after-open", None): per_kind,
        ("reset-at-once", None): per_kind,
        ("crash-in-message", 1011): per_kind,
        ("crash-in-open", 1011): per_kind,
    }
    after = await settled_stats(server, baseline)
    print(f"server before: {baseline}, after: {after}")
    assert after == baseline
    assert baseline == {
        "open_connections": 0,
        "memberships": 0,
        "groups": 0,
        "handlers": 0,
        "tasks": baseline["tasks"],
        "fds": baseline["fds"],
    }
    assert server.running
    log = server.log_text()
    assert "Exception in ASGI application" not in log  # every crash stayed in its handler
    assert "Traceback" not in log
