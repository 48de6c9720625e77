"""Ping-pong and connection churn: echo round trips, timed by the loadgen."""

from __future__ import annotations

from ..context import Context
from ..loadgen import echo_args, loadgen_errors, run_loadgen
from ..targets import ALL_SERVER_TARGETS, CHURN_TARGETS, Target
from .base import Recorder, Scenario, interleaved, measure_server_cpu, per_cpu_second


def _run_echo(
    ctx: Context,
    targets: list[Target],
    rec: Recorder,
    mode: str,
    variants: dict[str, int],
    duration: float,
    warmup: float,
    handshake: str = "minimal",
) -> None:
    """One server per target and run; the loadgen once per variant (its connections)."""
    timeout = duration + warmup + 60

    def measure(target: Target) -> None:
        headers = ctx.session_headers(target)
        with ctx.serve(target) as server:
            for variant, connections in variants.items():
                path = target.path("echo")
                args = echo_args(
                    mode,
                    server.port,
                    path,
                    connections,
                    duration,
                    warmup,
                    headers,
                    handshake=handshake,
                )
                res, server_cpu = measure_server_cpu(
                    server, lambda: run_loadgen(args, timeout)
                )
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

    interleaved(rec, targets, ctx.params.runs, measure)


def run_pingpong(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    variants = {
        f"{n} connection{'s' if n > 1 else ''}": n for n in p.pingpong_connections
    }
    _run_echo(
        ctx, targets, rec, "pingpong", variants, p.pingpong_duration, p.pingpong_warmup
    )


def run_churn(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    variants = {f"{p.churn_workers} workers": p.churn_workers}
    _run_echo(ctx, targets, rec, "churn", variants, p.churn_duration, p.churn_warmup)


def run_churn_browser(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    variants = {f"{p.churn_workers} workers": p.churn_workers}
    _run_echo(
        ctx,
        targets,
        rec,
        "churn",
        variants,
        p.churn_duration,
        p.churn_warmup,
        handshake="browser",
    )


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
CHURN_BROWSER = Scenario(
    "churn-browser",
    "Connection churn, browser handshake",
    "connections/s",
    "connections/s",
    True,
    CHURN_TARGETS,
    run_churn_browser,
    "The churn scenario with the handshake a browser sends: a same-origin `Origin` "
    "(which the Origin check, on by default, reads), a `User-Agent`, `Accept-Encoding`, "
    "`Accept-Language`, `Cache-Control` and `Pragma`, besides the handshake's own "
    "headers (no `Sec-WebSocket-Extensions`: the loadgen does not speak "
    "permessage-deflate). One JSON echo per connection, then the client starts the "
    "close handshake and the server closes TCP, as in `churn`.",
)
