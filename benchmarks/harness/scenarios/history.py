"""Group history: broadcast with it on and off, Redis round trips, recovery, memory."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable

from ..common import APPS, HERE, LOADGEN_CPU, BenchError
from ..context import Context
from ..loadgen import run_client, run_loadgen
from ..processes import proc_rss_kib
from ..targets import (
    HISTORY_BROADCAST_TARGETS,
    HISTORY_MEMORY_TARGETS,
    HISTORY_RECOVERY_TARGETS,
    HISTORY_REDIS_TARGETS,
    Target,
)
from .base import Recorder, Scenario, guarded, interleaved, measure_server_cpu
from .broadcast import members_args, receipts, run_broadcast_redis

CLIENT = HERE / "history_client.py"


def history_client(
    ctx: Context,
    target: Target,
    args: list[str],
    timeout: float,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run ``history_client.py`` pinned to the load generator's core."""
    cmd = [
        *("taskset", "-c", LOADGEN_CPU, str(target.python), str(CLIENT), *args),
        *("--timeout", f"{timeout:.0f}"),
    ]
    return run_client(
        cmd,
        timeout,
        on_event,
        "history_client",
        cwd=APPS,
        env=ctx.environment(target),
    )


def run_history_broadcast(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    members = ctx.params.history_members

    def measure(target: Target) -> None:
        with ctx.serve(target) as server:
            args = members_args(ctx, target, [server.port], members)
            res, _ = measure_server_cpu(server, lambda: run_loadgen(args, 120))
            rec.add(f"{members:,} members", target, res["median_ms"], **receipts(res))

    interleaved(rec, targets, ctx.params.broadcast_runs, measure)


def run_history_redis(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    run_broadcast_redis(ctx, targets, rec, monitor=True)


def run_history_recovery(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params

    def measure(target: Target) -> None:
        if ctx.redis is not None:
            ctx.redis.cli("FLUSHALL")  # every run starts its group at a new epoch
        with ctx.serve(target) as server:
            res = history_client(
                ctx,
                target,
                [
                    *("--mode", "recovery", "--port", str(server.port)),
                    *("--missed", str(p.history_missed)),
                    *("--repeats", str(p.history_repeats)),
                ],
                120,
            )
            server.check_alive()
        rec.add("fresh join", target, res["fresh_median_ms"], runs_ms=res["fresh_ms"])
        rec.add(
            f"{p.history_missed:,} missed messages",
            target,
            res["recovery_median_ms"],
            runs_ms=res["recovery_ms"],
            fresh_ms=res["fresh_median_ms"],
        )

    interleaved(rec, targets, p.runs, measure)


def run_history_memory(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    stored = p.history_stored
    warmup = 10

    def measure(target: Target) -> None:
        sized = replace(target, env=(*target.env, ("BENCH_HISTORY_SIZE", str(stored))))
        with ctx.serve(sized) as server:
            rss: dict[str, int] = {}

            def at_event(event: dict[str, Any]) -> None:
                time.sleep(p.idle_settle)
                rss[event["event"]] = proc_rss_kib(server.pid)

            res = history_client(
                ctx,
                sized,
                [
                    *("--mode", "fill", "--port", str(server.port)),
                    *("--messages", str(stored), "--warmup", str(warmup)),
                ],
                120,
                at_event,
            )
            server.check_alive()
        if res["offset"] != warmup + stored:
            raise BenchError(f"the witness saw offset {res['offset']}")
        # The log held ``warmup`` messages before and holds ``stored`` after.
        added = stored - warmup
        rec.add(
            f"SIZE {stored:,}",
            target,
            (rss["done"] - rss["ready"]) * 1024 / added,
            rss_before_kib=rss["ready"],
            rss_after_kib=rss["done"],
        )

    for _ in range(p.idle_runs):
        for target in targets:
            guarded(rec, target, lambda: measure(target))


HISTORY_BROADCAST = Scenario(
    "history-broadcast",
    "Broadcast to a group with history, in one process",
    "ms from trigger to last receipt",
    "ms",
    False,
    HISTORY_BROADCAST_TARGETS,
    run_history_broadcast,
    "The one-process broadcast above with 1,000 members, on the same django-ws app "
    'with and without `WS_BROADCAST["HISTORY"]` for the group (`BENCH_HISTORY=1`: '
    '`{"room": {"SIZE": 1000, "TTL": 600}}`), MemoryBackend. With history every '
    "member gets the message wrapped with the group's epoch and offset, and delivery "
    "goes through the event loop's queue. The value per run is the median over 15 "
    "rounds (after 3 warm-up rounds).",
    runs_param="broadcast_runs",
)
HISTORY_REDIS = Scenario(
    "history-redis",
    "Broadcast to a group with history, 2 processes through Redis",
    "ms from trigger to last receipt",
    "ms",
    False,
    HISTORY_REDIS_TARGETS,
    run_history_redis,
    "The broadcast across 2 processes above (500 members on each, RedisBackend), with "
    "and without history for the group, over the same window (all members joined to "
    "the last broadcast, warm-up rounds included, divided by the broadcasts). "
    "`INFO commandstats` also counts the commands a Lua script runs, so the round "
    "trips (commands sent by a client; each command of a pipeline counts) are "
    "counted from `redis-cli MONITOR` over that window, which shows a script's "
    "commands as `[0 lua]`; MONITOR runs for both rows. A process's presence "
    "heartbeat (`SET`, `SADD`, `PEXPIRE`, every few seconds) falls in the window of "
    "some runs, in both rows. With history a broadcast should be one `EVALSHA` (its script creates the "
    "epoch, increments the offset, adds to the stream, refreshes the TTLs and "
    "publishes) and the receiving processes read nothing back while no offset is "
    "skipped. The first broadcast to a fresh redis-server also sends an `EVAL` (the "
    "script is not cached yet): one run in the invocation pays it.",
    needs_redis=True,
    runs_param="broadcast_runs",
)
HISTORY_RECOVERY = Scenario(
    "history-recovery",
    "Recovering missed messages on join",
    "ms from connect to the frame",
    "ms",
    False,
    HISTORY_RECOVERY_TARGETS,
    run_history_recovery,
    "A Python client (`benchmarks/history_client.py`, websockets, pinned to core 1; "
    "the C load generator cannot offer `ws_since`) keeps one member of the group "
    "connected to know its position. Each repeat the trigger broadcasts 1,000 "
    "messages past that position; then a client connects to `/room` offering the "
    "position in `ws_since`, and the time from before its TCP connect to the last "
    "replayed frame is taken (recovery frame `recovered: true`, `missed: 1000`, "
    "offsets checked); then a fresh client connects without `ws_since`, sends one "
    "broadcast and the time to that first live frame is taken. The value per run is "
    "the median of 5 repeats. Both include the Python client's own work (handshake, "
    "decoding 1,001 JSON frames), so they bound the server's share from above.",
    needs_redis=True,
)
HISTORY_MEMORY = Scenario(
    "history-memory",
    "Memory per stored message",
    "bytes of server RSS per message held",
    "B/msg",
    False,
    HISTORY_MEMORY_TARGETS,
    run_history_memory,
    "A fresh server with history `SIZE` N for the group and one member: the Python "
    "client broadcasts 10 messages (warm-up), the server's VmRSS is read after a 3 s "
    "settle, then N more (the ~100-byte JSON of the broadcast scenarios) and VmRSS "
    "is read again once the member has them all; the log then holds N messages "
    "instead of 10, so the RSS difference is divided by N - 10. MemoryBackend (with "
    "Redis the history is in Redis, not in the server).",
    runs_param="idle_runs",
)
