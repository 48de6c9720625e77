"""Time broadcasts from sync code: the cost a Django view or a Celery task pays.

One plain Python process, Django settings configured, no event loop running:
``--kind djangows`` calls ``django_ws.broadcast_sync("room", data)``,
``--kind channels`` calls ``async_to_sync(channel_layer.group_send)(...)``,
``--kind raw`` calls redis-py's sync ``Redis.publish`` (the floor for Redis),
``--kind raw-postgres`` psycopg's ``SELECT pg_notify`` on one autocommit
connection to ``BENCH_POSTGRES_PORT`` (the floor for PostgreSQL).
The backend comes from the project's settings (BENCH_BROADCAST, BENCH_LAYER).
Prints one JSON line. Bounded: at most ``--calls`` calls and ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

DATA = {"type": "broadcast", "seq": 0, "payload": "x" * 60}


def make_call(kind: str) -> Callable[[], Any]:
    if kind == "raw":
        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        text = json.dumps(DATA)
        return lambda: client.publish("room", text)
    if kind == "raw-postgres":
        import psycopg

        port = os.environ["BENCH_POSTGRES_PORT"]
        connection = psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres dbname=postgres",
            autocommit=True,
        )
        text = json.dumps(DATA)
        return lambda: connection.execute("SELECT pg_notify(%s, %s)", ("room", text))

    sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
    import django

    django.setup()
    if kind == "djangows":
        import django_ws

        return lambda: django_ws.broadcast_sync("room", DATA)
    if kind == "channels":
        from asgiref.sync import async_to_sync
        from channels.layers import get_channel_layer

        group_send = async_to_sync(get_channel_layer().group_send)
        return lambda: group_send("room", {"type": "room.message", "data": DATA})
    raise SystemExit(f"unknown --kind {kind!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--kind", required=True, choices=["raw", "raw-postgres", "djangows", "channels"]
    )
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=20.0)
    args = parser.parse_args()

    call = make_call(args.kind)
    for _ in range(args.warmup):
        call()
    deadline = time.monotonic() + args.max_seconds
    cpu0, start = time.process_time(), time.perf_counter()
    done = 0
    while done < args.calls:
        call()
        done += 1
        if done % 64 == 0 and time.monotonic() > deadline:
            break
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    print(
        json.dumps(
            {
                "kind": args.kind,
                "calls": done,
                "seconds": round(elapsed, 4),
                "us_per_call": round(elapsed / done * 1e6, 2),
                "calls_per_s": round(done / elapsed, 1),
                "cpu_s": round(cpu, 4),
            }
        )
    )


if __name__ == "__main__":
    main()
