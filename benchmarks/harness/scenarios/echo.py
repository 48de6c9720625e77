"""Ping-pong and connection churn: echo round trips, timed by the loadgen."""

from __future__ import annotations

from ..context import Context
from ..loadgen import echo_args, loadgen_errors, run_loadgen
from ..processes import ServerProcess
from ..targets import ALL_SERVER_TARGETS, CHURN_TARGETS, Target
from .base import Recorder, Scenario, interleaved, measure_server_cpu, per_cpu_second


def _measure(
    rec: Recorder,
    target: Target,
    server: ServerProcess,
    variant: str,
    args: list[str],
    timeout: float,
) -> None:
    res, server_cpu = measure_server_cpu(server, lambda: run_loadgen(args, timeout))
    rec.add(
        variant,
        target,
        res["rate"],
        loadgen_cpu_pct=res.get("window_cpu_pct", res["cpu_pct"]),
        server_cpu_pct=server_cpu,
        per_cpu_s=per_cpu_second(res),
        errors=loadgen_errors(res),
        p50_ms=res["latency_p50_ms"],
        p99_ms=res["latency_p99_ms"],
    )


def run_pingpong(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    timeout = p.pingpong_duration + p.pingpong_warmup + 60

    def measure(target: Target) -> None:
        headers = ctx.session_headers(target)
        with ctx.serve(target) as server:
            for conns in p.pingpong_connections:
                args = echo_args(
                    "pingpong",
                    server.port,
                    target.path("echo"),
                    conns,
                    p.pingpong_duration,
                    p.pingpong_warmup,
                    headers,
                )
                variant = f"{conns} connection{'s' if conns > 1 else ''}"
                _measure(rec, target, server, variant, args, timeout)

    interleaved(rec, targets, p.runs, measure)


def run_churn(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    timeout = p.churn_duration + p.churn_warmup + 60

    def measure(target: Target) -> None:
        headers = ctx.session_headers(target)
        with ctx.serve(target) as server:
            args = echo_args(
                "churn",
                server.port,
                target.path("echo"),
                p.churn_workers,
                p.churn_duration,
                p.churn_warmup,
                headers,
            )
            variant = f"{p.churn_workers} workers"
            _measure(rec, target, server, variant, args, timeout)

    interleaved(rec, targets, p.runs, measure)


PINGPONG = Scenario(
    "pingpong",
    "Ping-pong",
    "round trips/s",
    "round trips/s",
    True,
    ALL_SERVER_TARGETS,
    run_pingpong,
    'Each connection sends `{"type": "echo", "n": i, "payload": "x" * 100}`, '
    "waits for the echo (the loadgen checks `n` and the payload), and repeats; round "
    "trips are counted in a 5 s window after 1 s of warm-up, all connections open "
    "before the clock starts.",
)
CHURN = Scenario(
    "churn",
    "Connection churn",
    "connections/s",
    "connections/s",
    True,
    CHURN_TARGETS,
    run_churn,
    "Each worker repeatedly opens a connection (TCP + WebSocket handshake), sends one "
    "echo message, reads the echo, and closes with a clean close handshake (the "
    "server closes TCP first, as RFC 6455 says); full cycles completed in a 5 s window "
    "after 1 s of warm-up. The `-auth` targets run the session/auth middleware for "
    "clients without a session cookie; the `-login` targets send a logged-in "
    "session cookie, so the session and the user are loaded from the database on "
    "every connection (the default `CONN_MAX_AGE = 0`, SQLite), and their `× ref` "
    "divides by `channels-login`.",
)
