"""Starting and stopping the servers the benchmark measures, each by its own PID.

The scenarios see a started server only as a ``ServerProcess``: its ``port``,
``pid`` and ``log``, ``check_alive()`` and ``stop()``. ``start_uvicorn`` is the
one place that knows how uvicorn is launched; it launches it through the tests'
helper, ``django_ws.asgi_servers.ServerProcess``, with the benchmark's own
flags: ``--log-level warning`` (at info level uvicorn logs every accepted
WebSocket: +21% CPU instructions per churn connection for the raw app under
callgrind), so the helper trusts the server's listening socket instead of its
"running on" line; ``taskset`` on the server core; 10,000+ file descriptors for
the idle scenario.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django_ws import asgi_servers

from .common import APPS, HOST, LOADGEN_CPU, SERVER_CPU, BenchError, capture

# Enough for the scale scenario's 100,000 connections, where the hard limit allows.
NOFILE = 131072
# One uvicorn worker per target, the same for every target.
UVICORN_OPTIONS = (
    "--http",
    "httptools",
    "--loop",
    "uvloop",
    "--ws",
    "websockets-sansio",
)


def raise_nofile() -> None:
    """preexec_fn: allow 100,000+ sockets per process (root may raise the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limits in ((NOFILE, max(hard, NOFILE)), (max(soft, min(hard, NOFILE)), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            return
        except (ValueError, OSError):
            continue


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """Stop one process we started: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def tail(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(
            path.read_text(errors="replace").strip().splitlines()[-lines:]
        )
    except OSError:
        return ""


@dataclass
class ServerProcess:
    """A server we started on 127.0.0.1:``port``, writing to ``log``."""

    process: asgi_servers.ServerProcess

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def log(self) -> Path:
        return self.process.log_path

    def check_alive(self) -> None:
        if not self.process.running:
            raise BenchError(f"server died: {tail(self.log)}")

    def stop(self) -> None:
        self.process.stop()


class _Uvicorn(asgi_servers.ServerProcess):
    """uvicorn with the benchmark's flags alone, not the ones the helper recommends.

    Every target runs uvicorn's defaults plus ``extra_args``, from ``apps/``.
    """

    def command(self) -> list[str]:
        return [
            *(self.python, "-m", "uvicorn", self.app, "--app-dir", str(APPS)),
            *("--host", self.host, "--port", str(self.port), *self.extra_args),
        ]


def start_uvicorn(
    python: Path,
    app: str,
    *,
    lifespan: str,
    env: Mapping[str, str],
    log_dir: Path,
    name: str,
) -> ServerProcess:
    """Start ``python -m uvicorn app`` from ``apps/``, pinned to the server core.

    Returns once it accepts connections; stops it and raises ``BenchError`` if
    it exits first or does not listen within 40 s.
    """
    port = free_port()
    process = _Uvicorn(
        "uvicorn",
        app,
        port=port,
        env=env,
        cwd=APPS,
        extra_args=[
            *UVICORN_OPTIONS,
            *("--lifespan", lifespan, "--log-level", "warning", "--no-access-log"),
        ],
        log_path=log_dir / f"server-{name}-{port}.log",
        startup_timeout=40.0,
        python=str(python),
        wait_for_log=False,
        command_prefix=("taskset", "-c", SERVER_CPU),
        nofile=NOFILE,
    )
    server = ServerProcess(process)
    try:
        process.start()
    except RuntimeError as error:
        reason = str(error).split(" Its log:", 1)[0].rstrip(".")
        raise BenchError(f"{reason}: {tail(server.log)}") from None
    except BaseException:
        server.stop()
        raise
    return server


class RedisServer:
    """A private redis-server on a free port (the shared 6379 is left alone)."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[Any] | None = None
        self.url = f"redis://{HOST}:{self.port}/0"

    def __enter__(self) -> RedisServer:
        log = self.workdir / "redis.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    *("taskset", "-c", LOADGEN_CPU, "redis-server"),
                    *("--port", str(self.port), "--bind", HOST),
                    *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.cli("PING", check=False).strip() == "PONG":
                return self
            time.sleep(0.05)
        stop_process(self.proc)
        raise BenchError(f"redis-server did not start: {tail(log)}")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def cli(self, *args: str, check: bool = True) -> str:
        out = capture(["redis-cli", "-h", HOST, "-p", str(self.port), *args], 10)
        if check and out.returncode:
            raise BenchError(f"redis-cli {' '.join(args)}: {out.stderr}")
        return out.stdout

    def monitor(self, out: Path) -> subprocess.Popen[Any]:
        """Start ``redis-cli MONITOR`` into ``out``; return once it is monitoring.

        Stop it with ``stop_process``. Each line names the client, or ``lua`` for a
        command that a script ran (see ``client_commands``).
        """
        with open(out, "wb") as sink:
            proc = subprocess.Popen(
                ["redis-cli", "-h", HOST, "-p", str(self.port), "MONITOR"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if out.read_bytes().startswith(b"OK"):
                return proc
            time.sleep(0.01)
        stop_process(proc)
        raise BenchError(f"redis-cli MONITOR did not start: {tail(out)}")

    def commandstats(self) -> dict[str, int]:
        stats = {}
        for line in self.cli("INFO", "commandstats").splitlines():
            if line.startswith("cmdstat_"):
                name, _, rest = line.partition(":")
                calls = dict(kv.split("=", 1) for kv in rest.split(","))["calls"]
                stats[name[len("cmdstat_") :]] = int(calls)
        return stats


def client_commands(monitor_log: Path) -> dict[str, int]:
    """Count the commands that clients sent (round trips) in a MONITOR log.

    Commands a Lua script ran are shown as ``[0 lua]`` and are left out;
    ``config``, ``info`` and ``monitor`` (the runner's own) too.
    """
    counts: dict[str, int] = {}
    for line in monitor_log.read_text(errors="replace").splitlines():
        _, bracket, rest = line.partition(" [")
        source, _, command = rest.partition("] ")
        if not bracket or source.endswith(" lua") or not command.startswith('"'):
            continue
        name = command.split('"')[1].lower()
        if name not in ("config", "info", "monitor"):
            counts[name] = counts.get(name, 0) + 1
    return counts


def nofile_available() -> int:
    """How many files a process we start may open: the hard limit, if we cannot raise it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard >= NOFILE:
        return NOFILE
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, NOFILE))
    except (ValueError, OSError):  # only root may raise the hard limit
        return int(hard)
    return NOFILE
