"""``django_ws.asgi_servers``: each selected server started, spoken to and stopped by PID."""

from __future__ import annotations

import asyncio
import os
import signal
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
