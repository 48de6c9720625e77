"""The machine: what it is, how fast it is right now, what is installed."""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import socket
import subprocess
import time
from pathlib import Path

from .common import APPS, REPO, VENV, VENV_102, capture

PACKAGES = (
    "django-ws",
    "Django",
    "asgiref",
    "channels",
    "channels-redis",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "websockets",
    "redis",
    "matplotlib",
)


def versions() -> dict[str, dict[str, str]]:
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        f"for n in {list(PACKAGES)!r}:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    result = {}
    for label, venv in (("benchmarks/.venv", VENV), ("benchmarks/.venv-102", VENV_102)):
        python = venv / "bin" / "python"
        if python.exists():
            # cwd=APPS: the repo root would shadow 1.0.2 with this checkout's metadata
            out = capture([str(python), "-c", code], 60, cwd=APPS)
            with contextlib.suppress(ValueError, IndexError):
                result[label] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _output(*cmd: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return capture(list(cmd), 10).stdout.strip()
    return ""


def machine() -> dict[str, str]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in _output("lscpu").splitlines()
            if line.startswith("Model name")
        ),
        platform.processor(),
    )
    mem_kib = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    debian = Path("/etc/debian_version")
    gcc = _output("gcc", "--version")
    return {
        "cpu": model,
        "nproc": _output("nproc"),
        "memory": f"{mem_kib / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
        "os": (
            f"Debian {debian.read_text().strip()}"
            if debian.exists()
            else platform.platform()
        ),
        "python": platform.python_version(),
        "gcc": gcc.splitlines()[0] if gcc else "",
        "redis-server": _output("redis-server", "--version"),
    }


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def git_revision() -> str:
    out = capture(["git", "-C", str(REPO), "describe", "--always", "--dirty"], 10)
    return out.stdout.strip() or "unknown"


def cpu_probe_ms() -> float:
    """Milliseconds for a fixed Python loop, best of 3: the CPU's speed right now.

    A shared machine can run two or three times slower for minutes at a time
    without any load average to show for it. This probe and ``loopback_probe_us``
    before and after each scenario say which state its numbers come from.
    """
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best * 1000, 1)


def loopback_probe_us() -> float:
    """Microseconds per 1-byte send + recv over a loopback TCP connection, best of 3.

    The other half of the machine's state. On 2026-11-25 the raw app made 19k
    ping-pong round trips/s at 09:20 against 63k at 07:40, while ``cpu_probe_ms``
    read 40 ms, as fast as it ever read here: the time was lost outside Python's
    own work, in system calls and the network path, which this measures.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with socket.create_connection(listener.getsockname()) as client:
            server, _ = listener.accept()
            with server:
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                best = float("inf")
                for _ in range(3):
                    start = time.perf_counter()
                    for _ in range(5000):
                        client.send(b"x")
                        server.recv(1)
                    best = min(best, time.perf_counter() - start)
    return round(best / 5000 * 1e6, 2)


def machine_state(when: str) -> dict[str, object]:
    """Load average and both probes, keyed ``..._before`` or ``..._after``."""
    return {
        f"loadavg_{when}": loadavg(),
        f"cpu_probe_ms_{when}": cpu_probe_ms(),
        f"loopback_probe_us_{when}": loopback_probe_us(),
    }
