"""Issue 18's scale scenarios: many idle connections in one process, sustained broadcast.

``scale-idle`` holds N connections (each joined to the group after one echo) in one
server, reads its RSS, then times a broadcast to all of them. ``broadcast-rate``
and ``broadcast-rate-redis`` send broadcasts back to back (the next as soon as the
last member has the previous one) and report deliveries per second, in one process
and across 4 processes through Redis.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from ..common import BenchError
from ..context import Context
from ..loadgen import broadcast_args, echo_args, loadgen_errors, run_loadgen
from ..processes import NOFILE, nofile_available, proc_rss_kib
from ..targets import RATE_REDIS_TARGETS, RATE_TARGETS, Target
from .base import Recorder, Scenario, guarded, interleaved
from .broadcast import receipts

#: File descriptors a process needs beyond its sockets (libraries, logs, Redis).
_FD_MARGIN = 1024
#: Broadcast to every member of scale-idle: rounds timed after one warm-up round.
_SCALE_ROUNDS = 3


def _rate_args(
    ports: list[int], target: Target, members: int, rounds: int, warmup: int
) -> list[str]:
    """Broadcast arguments with no pause between rounds: a sustained stream."""
    args = broadcast_args(
        ports, target.path("room"), target.path("trigger"), members, rounds, warmup
    )
    return [*args, "--gap", "0", *target.loadgen_args]


def run_scale_idle(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    members = p.scale_members
    needed = members + _FD_MARGIN
    available = nofile_available()
    if available < needed:
        for target in targets:
            rec.fail(
                target,
                f"{members:,} connections need {needed:,} open files per process, and "
                f"the hard limit here is {available:,}: raise it (`ulimit -Hn {NOFILE}` "
                f"as root, LimitNOFILE= in a systemd unit, `docker run --ulimit "
                f"nofile={NOFILE}`) or pass a smaller count with --smoke.",
            )
        return

    def measure(target: Target) -> None:
        path = target.path("echo")
        with ctx.serve(target) as server:
            warmup = echo_args(
                "pingpong", server.port, path, 10, 0.3, 0, list(target.loadgen_args)
            )
            run_loadgen(warmup, 60)
            time.sleep(p.idle_settle / 2)
            before = proc_rss_kib(server.pid)
            measured: dict[str, Any] = {}

            def at_event(event: dict[str, Any]) -> None:
                if event["event"] == "ready":
                    time.sleep(p.idle_settle)
                    measured["after"] = proc_rss_kib(server.pid)

            args = _rate_args([server.port], target, members, _SCALE_ROUNDS, 1)
            args += ["--sources", str(p.scale_sources), "--inflight", "200"]
            started = time.monotonic()
            res = run_loadgen(args, 1800, on_event=at_event)
            server.check_alive()
            if "after" not in measured:
                raise BenchError("the loadgen never said ready")
            after = measured["after"]
            rec.add(
                f"{members:,} connections",
                target,
                (after - before) / members,
                rss_before_kib=before,
                rss_after_kib=after,
                broadcast_ms=res["median_ms"],
                run_s=round(time.monotonic() - started, 1),
                **receipts(res),
            )

    for _ in range(p.idle_runs):
        for target in targets:
            guarded(rec, target, lambda: measure(target))


def run_broadcast_rate(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params

    def measure(target: Target) -> None:
        with ctx.serve(target) as server:
            for members in p.rate_members:
                args = _rate_args(
                    [server.port],
                    target,
                    members,
                    p.broadcast_rounds,
                    p.broadcast_warmup_rounds,
                )
                res = run_loadgen(args, 600)
                server.check_alive()
                if not res.get("median_ms"):
                    raise BenchError(f"{members:,} members: no broadcast round completed")
                rec.add(
                    f"{members:,} members",
                    target,
                    members * 1000.0 / res["median_ms"],
                    broadcast_ms=res["median_ms"],
                    **receipts(res),
                )

    interleaved(rec, targets, p.broadcast_runs, measure)


def run_broadcast_rate_redis(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    redis = ctx.redis
    assert redis is not None
    processes, per_server = p.rate_redis_processes, p.rate_redis_members_per_server
    members = processes * per_server

    def measure(target: Target) -> None:
        redis.cli("FLUSHALL")  # no group members left over from earlier runs
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(ctx.serve(target)) for _ in range(processes)]
            args = _rate_args(
                [s.port for s in servers],
                target,
                members,
                p.broadcast_rounds,
                p.broadcast_warmup_rounds,
            )
            res = run_loadgen(args, 600)
            for server in servers:
                server.check_alive()
        rec.add(
            f"{processes} processes x {per_server:,} members",
            target,
            members * 1000.0 / res["median_ms"],
            broadcast_ms=res["median_ms"],
            **receipts(res),
        )

    interleaved(rec, targets, p.broadcast_runs, measure)


_SCALE_NAMES = ("raw", "starlette", "djangows", "djangows-dsl", "djangows102", "socketio")

SCALE_IDLE = Scenario(
    "scale-idle",
    "Many idle connections in one process",
    "KiB per connection",
    "KiB/conn",
    False,
    [t for t in RATE_TARGETS if t.name in _SCALE_NAMES],
    run_scale_idle,
    "N connections to `/room` from several source addresses (127.0.0.1 to 127.0.0.4: "
    "one address has about 28,000 ephemeral ports), each joined to the group and "
    "answered one echo; VmRSS is read 3 s after the last echo, minus VmRSS after a "
    "warm-up, divided by N. Then broadcasts to all of them, back to back: *broadcast "
    "ms* is the median time from the trigger's send to the last member's receipt over "
    "3 rounds after 1 warm-up round. Needs a hard limit of open files above N (the "
    "scenario fails, saying so, where it is not).",
    runs_param="idle_runs",
)
BROADCAST_RATE = Scenario(
    "broadcast-rate",
    "Sustained broadcast in one process",
    "deliveries per second",
    "deliveries/s",
    True,
    RATE_TARGETS,
    run_broadcast_rate,
    "The broadcast scenario with no pause between rounds: the trigger sends the next "
    "broadcast as soon as the last member has the previous one. Deliveries per second "
    "are members divided by the median round time (15 rounds after 3 warm-up rounds).",
    runs_param="broadcast_runs",
)
BROADCAST_RATE_REDIS = Scenario(
    "broadcast-rate-redis",
    "Sustained broadcast across 4 processes through Redis",
    "deliveries per second",
    "deliveries/s",
    True,
    RATE_REDIS_TARGETS,
    run_broadcast_rate_redis,
    "Four uvicorn processes pinned to core 0, the members spread evenly over them, the "
    "trigger on the first; broadcasts back to back as in `broadcast-rate`, each "
    "counted once the last member on any process has it. Deliveries per second are "
    "all members divided by the median round time.",
    needs_redis=True,
    runs_param="broadcast_runs",
)
