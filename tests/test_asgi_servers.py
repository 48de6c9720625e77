"""``django_ws.asgi_servers``: each selected server started, spoken to and stopped by PID."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import socket
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from django_ws.asgi_servers import SERVERS, ServerProcess, port_accepts, recommended_args
from tests.live_server import REPO_ROOT

ECHO_APP = "tests.harness_apps:echo_app"
# Exit codes of a clean stop: uvicorn re-raises the SIGTERM, the others exit 0.
CLEAN_EXIT = {"uvicorn": -signal.SIGTERM, "hypercorn": 0, "daphne": 0, "granian": 0}


def echo_server(server: str, **options: object) -> ServerProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return ServerProcess(server, ECHO_APP, env=env, cwd=REPO_ROOT, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("server", "flags"),
    [
        ("uvicorn", ["--lifespan", "on", "--ws-ping-interval", "20"]),
        ("hypercorn", ["--bind", "127.0.0.1:8000", "--websocket-ping-interval", "20"]),
        ("daphne", ["--ping-interval", "20", "--ping-timeout", "20"]),
        ("granian", ["--interface", "asgi", "--workers", "1"]),
    ],
)
def test_recommended_args_carry_the_websocket_flags(server: str, flags: list[str]) -> None:
    args = recommended_args(server, "app:application")
    assert "app:application" in args
    for flag, value in zip(flags[::2], flags[1::2], strict=True):
        assert args[args.index(flag) + 1] == value


def test_an_unknown_server_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="choose one of uvicorn, hypercorn, daphne, granian"):
        ServerProcess("gunicorn", ECHO_APP)


async def test_each_server_serves_and_stops_cleanly_by_pid(asgi_server: str) -> None:
    server = echo_server(asgi_server).start()
    try:
        assert server.pid in server.process_ids()
        async with connect(server.ws_url("/"), open_timeout=5, proxy=None) as ws:
            await ws.send("hello")
            assert await asyncio.wait_for(ws.recv(), 5) == "hello"
    finally:
        code = await asyncio.to_thread(server.stop, 15)
    assert code == CLEAN_EXIT[asgi_server]
    assert not port_accepts(server.port)
    assert f"-m {asgi_server} " in server.log_text()


def running(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "State:\tZ" not in status  # a zombie has ended, unreaped by init yet


def test_kill_ends_the_workers_too(asgi_server: str) -> None:
    server = echo_server(asgi_server).start()
    pids = server.process_ids()
    assert server.kill() == -signal.SIGKILL
    deadline = time.monotonic() + 5  # SIGKILL is delivered, not waited for
    while time.monotonic() < deadline and (
        any(running(pid) for pid in pids) or port_accepts(server.port)
    ):
        time.sleep(0.05)
    assert [pid for pid in pids if running(pid)] == []
    assert not port_accepts(server.port)


def test_every_server_has_a_launcher() -> None:
    assert SERVERS == ("uvicorn", "hypercorn", "daphne", "granian")


# Options the benchmarks need: one uvicorn each ------------------------------------


def status_field(pid: int, name: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {name} in /proc/{pid}/status")


async def echoes(server: ServerProcess) -> str:
    async with connect(server.ws_url("/"), open_timeout=5, proxy=None) as ws:
        await ws.send("hello")
        return str(await asyncio.wait_for(ws.recv(), 5))


async def test_without_wait_for_log_a_warning_level_server_counts_as_started() -> None:
    server = echo_server(
        "uvicorn", wait_for_log=False, extra_args=["--log-level", "warning"]
    )
    assert server.ready_text() is None
    server.start()
    try:
        assert await echoes(server) == "hello"
    finally:
        await asyncio.to_thread(server.stop)
    assert "Uvicorn running on" not in server.log_text()


def test_without_wait_for_log_another_listener_on_the_port_is_not_ready() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        server = echo_server("uvicorn", port=port, wait_for_log=False)
        refused = "uvicorn exited with code 3 before serving"
        with pytest.raises(RuntimeError, match=refused):
            server.start()
    assert "address already in use" in server.log_text()


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset")
async def test_command_prefix_runs_the_server_under_taskset_with_its_own_pid() -> None:
    cpu = max(os.sched_getaffinity(0))
    server = echo_server("uvicorn", command_prefix=["taskset", "-c", str(cpu)])
    server.start()
    try:
        argv = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
        assert argv[:3] == [server.python.encode(), b"-m", b"uvicorn"]
        assert status_field(server.pid, "Cpus_allowed_list") == str(cpu)
        assert await echoes(server) == "hello"
    finally:
        await asyncio.to_thread(server.stop)
    assert f"--- taskset -c {cpu} {server.python} -m uvicorn " in server.log_text()


def test_nofile_sets_the_servers_limit_of_open_files() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with echo_server("uvicorn", nofile=1001) as server:
        limits = Path(f"/proc/{server.pid}/limits").read_text().splitlines()
    [line] = [line for line in limits if line.startswith("Max open files")]
    expected_hard = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    assert line.split()[-3:] == ["1001", expected_hard, "files"]
