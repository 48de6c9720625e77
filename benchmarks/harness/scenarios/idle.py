"""Idle memory: the server's RSS growth per open, idle connection."""

from __future__ import annotations

import time
from typing import Any, Callable

from ..common import BenchError
from ..context import Context
from ..loadgen import echo_args, loadgen_errors, run_loadgen
from ..processes import proc_rss_kib
from ..targets import ALL_SERVER_TARGETS, Target
from .base import Recorder, Scenario, guarded


def _idle_runner(
    *, echo: bool, handshake: str
) -> Callable[[Context, list[Target], Recorder], None]:
    """The idle measurement, handshake only or with one echo per connection first."""

    def run(ctx: Context, targets: list[Target], rec: Recorder) -> None:
        p = ctx.params
        counts = p.idle_echo_counts if echo else p.idle_counts

        def measure(target: Target, count: int) -> None:
            headers = ctx.session_headers(target)
            path = target.path("echo")
            with ctx.serve(target) as server:
                fresh = proc_rss_kib(server.pid)
                # Warm up: import-on-first-use code paths run before "before".
                warmup = echo_args(
                    "pingpong", server.port, path, 10, 0.3, 0, headers, handshake=handshake
                )
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

                args = echo_args(
                    "idle", server.port, path, count, 300, None, headers,
                    handshake=handshake, idle_echo=echo,
                )
                res = run_loadgen(args, timeout=300 + 60, on_event=at_ready)
                server.check_alive()
                after = measured["after"]
                rec.add(
                    f"{count:,} connections",
                    target,
                    (after - before) / count,
                    kib_from_fresh=round((after - fresh) / count, 2),
                    rss_fresh_kib=fresh,
                    rss_before_kib=before,
                    rss_after_kib=after,
                    loadgen_cpu_pct=res["cpu_pct"],
                    errors=loadgen_errors(res),
                    open_s=measured["open_s"],
                )

        # Not alternated: each count runs every target in the same order.
        for _ in range(p.idle_runs):
            for count in counts:
                for target in targets:
                    guarded(rec, target, lambda: measure(target, count))

    return run


run_idle = _idle_runner(echo=False, handshake="minimal")
run_idle_echo = _idle_runner(echo=True, handshake="browser")


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
IDLE_ECHO = Scenario(
    "idle-echo",
    "Idle memory per connection after one echo",
    "KiB per connection",
    "KiB/conn",
    False,
    ALL_SERVER_TARGETS,
    run_idle_echo,
    "What a real client leaves on the server: each of N connections opens with a "
    "browser's handshake (same-origin `Origin`, `User-Agent`, `Accept-*`, cache "
    "headers), exchanges one JSON echo (`{\"type\": \"echo\", \"n\": i, "
    "\"payload\": \"x\" * 100}`), then idles. VmRSS is read from /proc once every echo "
    "is back and 3 s have passed. *KiB/conn* subtracts the VmRSS after a warm-up (10 "
    "connections ping-pong for 0.3 s); *from fresh* subtracts the VmRSS of the fresh "
    "server before any connection, so it also counts what the first connections "
    "allocate once (imports, caches), spread over N.",
    runs_param="idle_runs",
)
