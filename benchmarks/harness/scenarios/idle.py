"""Idle memory: the server's RSS growth per open, idle connection."""

from __future__ import annotations

import time
from typing import Any

from ..common import BenchError
from ..context import Context
from ..loadgen import echo_args, loadgen_errors, run_loadgen
from ..processes import proc_rss_kib
from ..targets import ALL_SERVER_TARGETS, Target
from .base import Recorder, Scenario, guarded


def run_idle(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params

    def measure(target: Target, count: int) -> None:
        headers = ctx.session_headers(target)
        path = target.path("echo")
        with ctx.serve(target) as server:
            # Warm up: import-on-first-use code paths run before "before".
            warmup = echo_args("pingpong", server.port, path, 10, 0.3, 0, headers)
            run_loadgen(warmup, 60)
            time.sleep(p.idle_settle / 2)
            before = proc_rss_kib(server.pid)
            measured: dict[str, Any] = {}

            def at_ready(event: dict[str, Any]) -> None:
                if event["event"] != "ready":
                    return
                if event["open"] != count:
                    raise BenchError(f"only {event['open']} of {count} opened")
                time.sleep(p.idle_settle)
                measured["after"] = proc_rss_kib(server.pid)
                measured["open_s"] = event["open_s"]

            res = run_loadgen(
                echo_args("idle", server.port, path, count, 300, None, headers),
                timeout=300 + 60,
                on_event=at_ready,
            )
            server.check_alive()
            after = measured["after"]
            rec.add(
                f"{count:,} connections",
                target,
                (after - before) / count,
                rss_before_kib=before,
                rss_after_kib=after,
                loadgen_cpu_pct=res["cpu_pct"],
                errors=loadgen_errors(res),
                open_s=measured["open_s"],
            )

    # Not alternated: each count runs every target in the same order.
    for _ in range(p.idle_runs):
        for count in p.idle_counts:
            for target in targets:
                guarded(rec, target, lambda: measure(target, count))


IDLE = Scenario(
    "idle",
    "Idle memory per connection",
    "KiB per connection",
    "KiB/conn",
    False,
    ALL_SERVER_TARGETS,
    run_idle,
    "A fresh server is warmed up (10 connections ping-pong for 0.3 s), its VmRSS read "
    "from /proc, then N idle connections are opened (handshake only) and VmRSS is read "
    "again after a 3 s settle; the difference divided by N.",
    runs_param="idle_runs",
)
