"""Broadcast to a group: in one process, and across two processes through Redis."""

from __future__ import annotations

import statistics
import subprocess
import time
from typing import Any

from ..context import Context
from ..loadgen import broadcast_args, loadgen_errors, run_loadgen
from ..processes import client_commands, stop_process
from ..targets import BROADCAST_TARGETS, REDIS_BROADCAST_TARGETS, Target
from .base import Recorder, Scenario, interleaved, measure_server_cpu


def members_args(
    ctx: Context, target: Target, ports: list[int], members: int
) -> list[str]:
    """The loadgen's broadcast arguments: ``members`` on ``ports``, the params' rounds."""
    p = ctx.params
    return broadcast_args(
        ports,
        target.path("room"),
        target.path("trigger"),
        members,
        p.broadcast_rounds,
        p.broadcast_warmup_rounds,
    )


def receipts(res: dict[str, Any]) -> dict[str, Any]:
    """What every broadcast run records beside its median time."""
    return {
        "first_ms": round(statistics.median(res["first_ms"]), 3),
        "max_ms": res["max_ms"],
        "missed": res["missed"],
        "loadgen_cpu_pct": res["cpu_pct"],
        "errors": loadgen_errors(res),
    }


def run_broadcast(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    def measure(target: Target) -> None:
        with ctx.serve(target) as server:
            for members in ctx.params.broadcast_members:
                args = members_args(ctx, target, [server.port], members)
                res, _ = measure_server_cpu(server, lambda: run_loadgen(args, 120))
                rec.add(
                    f"{members:,} members", target, res["median_ms"], **receipts(res)
                )

    interleaved(rec, targets, ctx.params.broadcast_runs, measure)


def _round_trips(counts: dict[str, int] | None, rounds: int) -> dict[str, Any]:
    if counts is None:
        return {}
    return {
        "round_trips_per_broadcast": round(sum(counts.values()) / rounds, 2),
        "round_trips": {k: round(v / rounds, 2) for k, v in sorted(counts.items())},
    }


def run_broadcast_redis(
    ctx: Context, targets: list[Target], rec: Recorder, monitor: bool = False
) -> None:
    """Time and count a broadcast across 2 processes.

    ``monitor`` also counts the round trips (the commands clients sent, not
    those a Lua script ran) with ``redis-cli MONITOR`` over the same window.
    """
    p = ctx.params
    redis = ctx.redis
    assert redis is not None
    members = 2 * p.redis_members_per_server
    rounds = p.broadcast_rounds + p.broadcast_warmup_rounds

    def measure(target: Target) -> None:
        redis.cli("FLUSHALL")  # no group members left over from earlier runs
        with ctx.serve(target) as a, ctx.serve(target) as b:
            stats: dict[str, dict[str, int]] = {}
            watching: list[subprocess.Popen[Any]] = []
            monitor_log = ctx.workdir / "monitor.log"

            def at_event(event: dict[str, Any]) -> None:
                # count from all members joined to all broadcasts done
                if event["event"] == "ready":
                    redis.cli("CONFIG", "RESETSTAT")
                    if monitor:
                        watching.append(redis.monitor(monitor_log))
                elif event["event"] == "done":
                    stats["after"] = redis.commandstats()
                    if watching:
                        time.sleep(0.2)  # the last lines reach the log
                        stop_process(watching.pop())
                        stats["round_trips"] = client_commands(monitor_log)

            args = members_args(ctx, target, [a.port, b.port], members)
            try:
                res = run_loadgen(args, 180, on_event=at_event)
            finally:
                for proc in watching:
                    stop_process(proc)
            a.check_alive()
            b.check_alive()
        commands = {
            k: v
            for k, v in stats["after"].items()
            if k.split("|")[0] not in ("config", "info", "monitor")
        }
        rec.add(
            f"2 processes x {p.redis_members_per_server:,} members",
            target,
            res["median_ms"],
            **receipts(res),
            publish_per_broadcast=round(commands.get("publish", 0) / rounds, 2),
            commands_per_broadcast=round(sum(commands.values()) / rounds, 2),
            commands={k: round(v / rounds, 2) for k, v in sorted(commands.items())},
            **_round_trips(stats.get("round_trips"), rounds),
        )

    interleaved(rec, targets, p.broadcast_runs, measure)


BROADCAST = Scenario(
    "broadcast",
    "Broadcast in one process",
    "ms from trigger to last receipt",
    "ms",
    False,
    BROADCAST_TARGETS,
    run_broadcast,
    "N members connect to `/room` (joining the group) and one trigger connection to "
    "`/trigger`; every member answers one echo first so all joins are complete. Each "
    'round the trigger sends `{"type": "broadcast", "seq": k, ...}` and the server '
    "sends that ~100-byte JSON to the group; the loadgen takes the time (monotonic "
    "clock) from the trigger's send to the moment the last member has it. The value "
    "per run is the median over 15 rounds (after 3 warm-up rounds); the table shows "
    "the median of 5 runs. Starlette and django-ws 1.0.2 have no groups: their apps "
    "keep a set of members by hand.",
    runs_param="broadcast_runs",
)
BROADCAST_REDIS = Scenario(
    "broadcast-redis",
    "Broadcast across 2 processes through Redis",
    "ms from trigger to last receipt",
    "ms",
    False,
    REDIS_BROADCAST_TARGETS,
    run_broadcast_redis,
    "Two uvicorn processes, both pinned to core 0 (with 2 cores the load generator "
    "keeps core 1; the private redis-server started by the runner shares core 1 with "
    "it), 500 members on each; the trigger is on the first process and the time is "
    "taken until the last member on either process has the message. Redis commands "
    "are counted with `CONFIG RESETSTAT` once all members are connected and "
    "`INFO commandstats` right after the last broadcast (before anyone leaves), "
    "divided by the number of broadcasts (warm-up rounds included); `config`/`info` "
    "themselves are left out, the receive loops' commands (channels_redis' "
    "BZPOPMIN) count. Members connect at most 50 at a time: with 200 concurrent "
    "handshakes channels_redis refuses some (redis-py's MaxConnectionsError).",
    needs_redis=True,
    runs_param="broadcast_runs",
)
