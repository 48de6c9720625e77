"""What a sync broadcast costs a view: PostgresBackend against RedisBackend and floors.

One plain process, no event loop, no member anywhere (so only the publisher's
cost is measured): ``broadcast_sync("room", data)`` ``CALLS`` times on each
backend, outside any transaction, against the raw floors (psycopg's
``SELECT pg_notify`` and redis-py's ``PUBLISH`` on one connection). Prints the
median microseconds per call (one statement, one round trip per broadcast on
the backend's own connection for PostgreSQL, one PUBLISH for Redis). Timing on a shared machine is
indicative only; run it from the repository root with the test settings:

    DJANGO_SETTINGS_MODULE=tests.settings python benchmarks/postgres_sync_publish.py
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import django

CALLS = int(os.environ.get("CALLS", "300"))
DATA = {"type": "broadcast", "seq": 0, "payload": "x" * 60}
PG = "host=127.0.0.1 user=postgres dbname=django_ws_test"


def timed(call: Callable[[], Any]) -> float:
    samples = []
    for _ in range(CALLS):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1e6, 1)


def main() -> None:
    django.setup()
    import psycopg
    import redis
    from django.test.utils import override_settings

    import django_ws
    from django_ws.broadcast import get_backend

    results: dict[str, Any] = {"calls": CALLS}
    with psycopg.connect(PG, autocommit=True) as raw:
        text = json.dumps(DATA)
        results["raw pg_notify"] = timed(lambda: raw.execute("SELECT pg_notify('room', %s)", (text,)))
    client = redis.Redis.from_url("redis://127.0.0.1:6379/15")
    results["raw redis PUBLISH"] = timed(lambda: client.publish("room", text))
    client.close()

    for name, config in (
        ("PostgresBackend", {"BACKEND": "django_ws.broadcast.PostgresBackend", "LOCATION": "postgres", "OPTIONS": {"PREFIX": "bench"}}),
        ("RedisBackend", {"BACKEND": "django_ws.broadcast.RedisBackend", "LOCATION": "redis://127.0.0.1:6379/15", "OPTIONS": {"PREFIX": "bench"}}),
    ):
        overriding = override_settings(WS_BROADCAST=config)  # drops the cached backend
        overriding.enable()
        backend = get_backend()
        assert type(backend).__name__ == name, backend
        django_ws.broadcast_sync("room", DATA)  # connects
        results[f"{name} broadcast_sync"] = timed(lambda: django_ws.broadcast_sync("room", DATA))
        import asyncio

        asyncio.run(backend.stop())
        overriding.disable()
    print(json.dumps({"median_us": results}, indent=2))


if __name__ == "__main__":
    main()
