"""broadcast_sync from sync code: the caller's cost per call, no server."""

from __future__ import annotations

import json

from ..common import APPS, HERE, SERVER_CPU, BenchError, capture
from ..context import Context
from ..postgres import postgres_for
from ..targets import SYNC_TARGETS, Target
from .base import Recorder, Scenario, interleaved


def run_sync(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    with postgres_for(ctx, targets, rec) as (_, runnable):
        _run_sync(ctx, runnable, rec)


def _run_sync(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params

    def measure(target: Target) -> None:
        if ctx.redis is not None:
            ctx.redis.cli("FLUSHALL")
        out = capture(
            [
                *("taskset", "-c", SERVER_CPU, str(target.python)),
                *(str(HERE / "sync_broadcast.py"), "--kind", target.sync_kind),
                *("--calls", str(p.sync_calls), "--warmup", str(p.sync_warmup)),
                *("--max-seconds", "30"),
            ],
            180,
            cwd=APPS,
            env=ctx.environment(target),
        )
        if out.returncode:
            raise BenchError(out.stderr.strip()[-400:])
        res = json.loads(out.stdout.strip().splitlines()[-1])
        rec.add(
            "from sync code",
            target,
            res["us_per_call"],
            calls=res["calls"],
            calls_per_s=res["calls_per_s"],
        )

    interleaved(rec, targets, p.runs, measure)


SYNC_BROADCAST = Scenario(
    "sync-broadcast",
    "broadcast_sync from sync code",
    "µs per call",
    "µs/call",
    False,
    SYNC_TARGETS,
    run_sync,
    "A plain Python process (Django settings configured, no event loop running, "
    "pinned to core 0) calls the sync API in a timed loop after a warm-up: "
    '`django_ws.broadcast_sync("room", data)` or Channels\' '
    '`async_to_sync(channel_layer.group_send)("room", event)`; the raw floor is '
    "redis-py's sync `publish`, and for PostgreSQL psycopg's `SELECT pg_notify` on one "
    "autocommit connection (`raw-postgres`). `djangows-postgres` runs `PostgresBackend` "
    "outside a transaction (its own sync connection: one statement, one round trip "
    "per call) on a private PostgreSQL the runner starts, as in *Broadcast across 2 "
    "processes through PostgreSQL*. Nobody is a member of the group in that process, so "
    "this is the caller's cost, not the delivery's.",
    needs_redis=True,
)
