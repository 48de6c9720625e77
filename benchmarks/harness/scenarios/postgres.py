"""Broadcast across 2 processes through PostgreSQL, beside one Redis and the floors."""

from __future__ import annotations

from typing import Any

from ..context import Context
from ..loadgen import run_loadgen
from ..postgres import NEEDS_POSTGRES_SERVER, postgres_for
from ..targets import POSTGRES_BROADCAST_TARGETS, Target
from .base import Recorder, Scenario, interleaved
from .broadcast import members_args, receipts


def is_notify(statement: str) -> bool:
    """Whether a (normalized) statement sends a notification."""
    lowered = statement.lower()
    return "pg_notify(" in lowered or lowered.startswith("notify ")


def postgres_counts(calls: dict[str, int], rounds: int) -> dict[str, Any]:
    """Statements and NOTIFYs per broadcast from ``pg_stat_statements`` calls."""
    notifies = sum(count for statement, count in calls.items() if is_notify(statement))
    return {
        "notify_per_broadcast": round(notifies / rounds, 2),
        "statements_per_broadcast": round(sum(calls.values()) / rounds, 2),
        "statements": {
            statement[:120]: round(count / rounds, 2)
            for statement, count in sorted(calls.items())
        },
    }


def redis_counts(commands: dict[str, int], rounds: int) -> dict[str, Any]:
    """Commands and PUBLISHes per broadcast from ``INFO commandstats``."""
    kept = {
        name: count
        for name, count in commands.items()
        if name.split("|")[0] not in ("config", "info")
    }
    return {
        "publish_per_broadcast": round(kept.get("publish", 0) / rounds, 2),
        "commands_per_broadcast": round(sum(kept.values()) / rounds, 2),
        "commands": {k: round(v / rounds, 2) for k, v in sorted(kept.items())},
    }


def run_broadcast_postgres(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    members = 2 * p.redis_members_per_server
    rounds = p.broadcast_rounds + p.broadcast_warmup_rounds
    with postgres_for(ctx, targets, rec) as (postgres, runnable):

        def measure(target: Target) -> None:
            if ctx.redis is not None:
                ctx.redis.cli("FLUSHALL")
            with ctx.serve(target) as a, ctx.serve(target) as b:
                counted: dict[str, Any] = {}

                def at_event(event: dict[str, Any]) -> None:
                    # count from all members joined to all broadcasts done
                    if target.needs in NEEDS_POSTGRES_SERVER:
                        assert postgres is not None
                        if event["event"] == "ready":
                            postgres.reset_stats()
                        elif event["event"] == "done":
                            counted.update(
                                postgres_counts(postgres.statement_calls(), rounds)
                            )
                    else:
                        assert ctx.redis is not None
                        if event["event"] == "ready":
                            ctx.redis.cli("CONFIG", "RESETSTAT")
                        elif event["event"] == "done":
                            counted.update(
                                redis_counts(ctx.redis.commandstats(), rounds)
                            )

                args = members_args(ctx, target, [a.port, b.port], members)
                res = run_loadgen(args, 180, on_event=at_event)
                a.check_alive()
                b.check_alive()
            rec.add(
                f"2 processes x {p.redis_members_per_server:,} members",
                target,
                res["median_ms"],
                **receipts(res),
                **counted,
            )

        interleaved(rec, runnable, p.broadcast_runs, measure)


BROADCAST_POSTGRES = Scenario(
    "broadcast-postgres",
    "Broadcast across 2 processes through PostgreSQL",
    "ms from trigger to last receipt",
    "ms",
    False,
    POSTGRES_BROADCAST_TARGETS,
    run_broadcast_postgres,
    "As *Broadcast across 2 processes through Redis* (2 uvicorn processes, 500 "
    "members on each, the trigger on the first), with `PostgresBackend` on a private "
    "PostgreSQL that the runner starts on a free port (Debian's `initdb` and "
    "`postgres`, pinned with the load generator like the redis-server, `fsync` off, "
    "stopped by PID) and migrates (`migrate django_ws`). Its floor, `raw-postgres`, "
    "is the bare app sending each broadcast as one `SELECT pg_notify` on a psycopg "
    "connection, with one LISTENing connection per process; `raw` and "
    "`djangows` are the same two apps on the runner's redis-server (PUBLISH, and "
    "`RedisBackend` on one Redis), in the same invocation for the ratios. PostgreSQL statements are counted exactly with "
    "`pg_stat_statements` (preloaded, `track=top`: the statements clients sent): reset once all members are "
    "connected, read right after the last broadcast, divided by the broadcasts "
    "(warm-up included); the runner's own statements are left out. "
    "`notify_per_broadcast` counts the statements that call `pg_notify` (or "
    "`NOTIFY`); `statements_per_broadcast` counts every statement in that window, "
    "so a presence refresh that falls in it (every 5 s per process) shows as a "
    "fraction. Redis commands are counted as in the Redis scenario.",
    needs_redis=True,
    runs_param="broadcast_runs",
)
