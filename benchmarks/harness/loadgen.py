"""The C load generator: built when its source is newer, self-tested, run pinned.

``run_loadgen`` starts it on the load generator's core and reads its JSON lines
(``run_client``, which the Python clients share); ``echo_args`` and
``broadcast_args`` build its command lines.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from typing import Any, Callable

# benchmarks/loadgen/selftest.py checks the same error counters.
from loadgen.selftest import ERROR_FIELDS

from .common import (
    LOADGEN,
    LOADGEN_CPU,
    LOADGEN_SRC,
    REPO,
    SELFTEST,
    BenchError,
    capture,
    log,
)
from .processes import raise_nofile


def build_loadgen() -> None:
    if LOADGEN.exists() and LOADGEN.stat().st_mtime >= LOADGEN_SRC.stat().st_mtime:
        return
    log(f"building {LOADGEN.relative_to(REPO)}")
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-Wextra", "-o", str(LOADGEN), str(LOADGEN_SRC)],
        check=True,
        timeout=120,
    )


def selftest() -> None:
    out = capture([sys.executable, str(SELFTEST), str(LOADGEN)], 120)
    if out.returncode:
        raise SystemExit(f"loadgen selftest failed:\n{out.stdout}{out.stderr}")
    log("loadgen selftest: ok")


def echo_args(
    mode: str,
    port: int,
    path: str,
    connections: int,
    duration: float,
    warmup: float | None,
    headers: list[str],
    *,
    handshake: str = "minimal",
    idle_echo: bool = False,
) -> list[str]:
    """Arguments for the ``pingpong``, ``churn`` and ``idle`` modes.

    ``handshake`` picks the loadgen's header set (``minimal``, ``go``, ``browser``);
    ``idle_echo`` has each idle connection exchange one echo before it idles.
    """
    args = ["--mode", mode, "--port", str(port), "--path", path]
    args += ["--connections", str(connections), "--duration", str(duration)]
    if warmup is not None:
        args += ["--warmup", str(warmup)]
    if handshake != "minimal":
        args += ["--handshake", handshake]
    if idle_echo:
        args.append("--idle-echo")
    return args + headers


def broadcast_args(
    ports: list[int],
    path: str,
    trigger_path: str,
    members: int,
    rounds: int,
    warmup_rounds: int,
) -> list[str]:
    return [
        *("--mode", "broadcast", "--ports", ",".join(map(str, ports))),
        *("--path", path, "--trigger-path", trigger_path),
        *("--connections", str(members), "--count", str(rounds)),
        *("--warmup-rounds", str(warmup_rounds), "--wait-stdin"),
        # channels_redis refuses some of 200 concurrent handshakes (redis-py's
        # MaxConnectionsError), so members connect at most 50 at a time.
        *("--inflight", "50"),
    ]


def run_loadgen(
    args: list[str],
    timeout: float,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the loadgen pinned to its core.

    ``on_event`` runs at each of its ``{"event": ...}`` lines (``ready``, and
    ``done`` in broadcast mode), after which the loadgen is told to go on.
    """
    cmd = [
        *("taskset", "-c", LOADGEN_CPU, str(LOADGEN), *args),
        *("--timeout", f"{timeout:.0f}"),
    ]
    return run_client(cmd, timeout, on_event, "loadgen")


def run_client(
    cmd: list[str],
    timeout: float,
    on_event: Callable[[dict[str, Any]], None] | None,
    name: str,
    **popen: Any,
) -> dict[str, Any]:
    """Run a client that prints JSON lines: ``{"event": ...}`` ones, then its result.

    After each event line (and ``on_event``) the client is told to go on with a
    line on its stdin; the result must say ``"ok": true``.
    """
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=raise_nofile,
        **popen,
    )
    killer = threading.Timer(timeout + 20, proc.kill)  # belt and braces over --timeout
    killer.start()
    result = None
    try:
        assert proc.stdout is not None and proc.stdin is not None
        for line in proc.stdout:
            data = json.loads(line)
            if "event" in data:
                if on_event is not None:
                    on_event(data)
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write("\n")
                    proc.stdin.flush()
            else:
                result = data
        proc.wait(timeout=30)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if result is None:
        err = proc.stderr.read() if proc.stderr else ""
        raise BenchError(
            f"{name} gave no result (exit {proc.returncode}): {err.strip()[-400:]}"
        )
    if not result.get("ok"):
        raise BenchError(
            f"{name} failed: {result.get('error')}: {json.dumps(result)[:300]}"
        )
    return result


def loadgen_errors(result: dict[str, Any]) -> int:
    return sum(int(result.get(k, 0)) for k in ERROR_FIELDS)
