"""Broadcast across two server processes: PostgresBackend against RedisBackend.

Two uvicorn processes (``tests.live_server.LiveServer``, the test project's chat
room ``tests/e2e/apps/broadcast_ws.py``) share a backend; ``MEMBERS`` members
on each; each round one member on the first process says a number and the time
runs until every member on both processes has it (median over ``ROUNDS`` after
``WARMUP``). The client runs in this one process, so the figures include its own
work: on a shared machine, indicative only, as ratios between backends. Run from
the repository root with PostgreSQL and Redis on their usual ports:

    MEMBERS=50 python benchmarks/postgres_cross_process.py
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from tests.live_server import LiveServer  # noqa: E402

MEMBERS = int(os.environ.get("MEMBERS", "50"))
ROUNDS = int(os.environ.get("ROUNDS", "20"))
WARMUP = 3


def backends() -> dict[str, dict[str, Any]]:
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    return {
        "RedisBackend": {
            "BACKEND": "django_ws.broadcast.RedisBackend",
            "LOCATION": "redis://127.0.0.1:6379/14",
            "OPTIONS": {"PREFIX": prefix},
        },
        "PostgresBackend": {
            "BACKEND": "django_ws.broadcast.PostgresBackend",
            "LOCATION": "postgres",
            "OPTIONS": {"PREFIX": prefix},
        },
        "PostgresBackend, HISTORY": {
            "BACKEND": "django_ws.broadcast.PostgresBackend",
            "LOCATION": "postgres",
            "OPTIONS": {"PREFIX": prefix},
            "HISTORY": {"bench-*": {"SIZE": 1000, "TTL": 600}},
        },
    }


async def until(member: ClientConnection, number: int) -> None:
    while True:
        frame = json.loads(await asyncio.wait_for(member.recv(), 30))
        data = frame.get("data", frame)
        if data == {"text": str(number)}:
            return


async def measure(config: dict[str, Any]) -> float:
    overrides = {"ROOT_WS_URLCONF": "tests.e2e.apps.broadcast_ws", "WS_BROADCAST": config}
    with LiveServer(overrides) as a, LiveServer(overrides) as b:
        members: list[ClientConnection] = []
        try:
            for server in (a, b):
                for _ in range(MEMBERS):
                    member = await connect(server.ws_url("/room/bench-room"), open_timeout=10)
                    json.loads(await member.recv())  # joined
                    members.append(member)
            trigger = members[0]
            samples = []
            for number in range(WARMUP + ROUNDS):
                started = time.perf_counter()
                await trigger.send(json.dumps({"say": str(number)}))
                await asyncio.gather(*(until(member, number) for member in members))
                if number >= WARMUP:
                    samples.append((time.perf_counter() - started) * 1000)
            return round(statistics.median(samples), 2)
        finally:
            for member in members:
                await member.close()


async def main() -> None:
    results = {name: await measure(config) for name, config in backends().items()}
    print(
        json.dumps(
            {"processes": 2, "members_per_process": MEMBERS, "rounds": ROUNDS,
             "median_ms_to_last_member": results},
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
