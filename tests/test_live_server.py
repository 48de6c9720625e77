"""The end-to-end harness itself, run against a raw ASGI echo app."""

from __future__ import annotations

import asyncio
import signal
import socket
import urllib.error
import urllib.request

import pytest
import redis.asyncio
import redis.exceptions
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import LiveServerFactory
from tests.live_server import LiveServer, PrivateRedis, port_accepts

ECHO_APP = "tests.harness_apps:echo_app"
STUCK_APP = "tests.harness_apps:stuck_app"
WS_IMPLEMENTATIONS = ["websockets", "websockets-sansio"]


@pytest.fixture(params=WS_IMPLEMENTATIONS)
def echo_server(
    request: pytest.FixtureRequest, live_server_factory: LiveServerFactory
) -> LiveServer:
    return live_server_factory(uvicorn_args=["--ws", request.param], app=ECHO_APP)


async def test_echo_text(echo_server: LiveServer) -> None:
    async with connect(echo_server.ws_url("/echo")) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"


def test_log_text_has_uvicorn_startup(echo_server: LiveServer) -> None:
    assert "Application startup complete." in echo_server.log_text()


async def test_stop_sends_close_1012(echo_server: LiveServer) -> None:
    async with connect(echo_server.ws_url("/echo")) as ws:
        await ws.send("hello")
        await ws.recv()
        # stop() blocks; in a thread, the client can answer the close frame.
        # uvicorn re-raises the SIGTERM once shut down: -15 is a clean exit.
        assert await asyncio.to_thread(echo_server.stop) == -signal.SIGTERM
        with pytest.raises(ConnectionClosed) as excinfo:
            await ws.recv()
    assert excinfo.value.rcvd is not None
    assert excinfo.value.rcvd.code == 1012
    assert not port_accepts(echo_server.port)


async def test_stop_kills_a_server_stuck_in_shutdown(
    live_server_factory: LiveServerFactory,
) -> None:
    server = live_server_factory(app=STUCK_APP)
    async with connect(server.ws_url("/stuck")):
        assert await asyncio.to_thread(server.stop, 1) == -signal.SIGKILL


async def test_graceful_shutdown_timeout_cancels_a_stuck_app(
    live_server_factory: LiveServerFactory,
) -> None:
    server = live_server_factory(
        uvicorn_args=["--timeout-graceful-shutdown", "1"], app=STUCK_APP
    )
    async with connect(server.ws_url("/stuck")) as ws:
        assert await asyncio.to_thread(server.stop, 5) == -signal.SIGTERM
        with pytest.raises(ConnectionClosed) as excinfo:
            await ws.recv()
    assert excinfo.value.rcvd is not None
    assert excinfo.value.rcvd.code == 1012
    assert "timeout graceful shutdown exceeded" in server.log_text()


async def test_kill_drops_connection_without_close_frame(
    echo_server: LiveServer,
) -> None:
    async with connect(echo_server.ws_url("/echo")) as ws:
        assert echo_server.kill() == -9
        with pytest.raises(ConnectionClosed) as excinfo:
            await ws.recv()
    assert excinfo.value.rcvd is None


async def test_restart_serves_on_the_same_port(echo_server: LiveServer) -> None:
    port, pid = echo_server.port, echo_server.pid
    echo_server.restart()
    assert (echo_server.port, echo_server.running) == (port, True)
    assert echo_server.pid != pid
    async with connect(echo_server.ws_url("/echo")) as ws:
        await ws.send("again")
        assert await ws.recv() == "again"
    assert echo_server.log_text().count("Application startup complete.") == 2


def test_start_failure_raises_with_the_log() -> None:
    server = LiveServer(app="tests.harness_apps:missing_app")
    with pytest.raises(RuntimeError, match="exited with code 3 before") as excinfo:
        server.start()
    assert 'Attribute "missing_app" not found' in str(excinfo.value)
    server.close()


def test_start_moves_off_a_port_taken_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        taken_port = taken.getsockname()[1]
        server = LiveServer(app=ECHO_APP)
        monkeypatch.setattr(server, "port", taken_port)
        with server:
            assert server.port != taken_port
            assert "address already in use" in server.log_text()


def test_context_manager_stops_the_server() -> None:
    with LiveServer(app=ECHO_APP) as server:
        assert port_accepts(server.port)
    assert not server.running
    assert not server.log_path.exists()


async def test_redis_url_is_flushed_database_15(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert redis_url.endswith("/15")
        assert await client.dbsize() == 0
    finally:
        await client.aclose()


async def test_private_redis_stops_and_starts(private_redis: PrivateRedis) -> None:
    client = redis.asyncio.Redis.from_url(private_redis.url)
    try:
        await client.set("key", "value")
        private_redis.stop()
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.get("key")
        private_redis.start()
        # Nothing is kept on disk: a restarted Redis is empty.
        assert await client.get("key") is None
    finally:
        await client.aclose()


def test_default_app_serves_the_test_project(
    live_server_factory: LiveServerFactory,
) -> None:
    server = live_server_factory()
    with urllib.request.urlopen(server.http_url("/http/"), timeout=5) as response:
        assert response.read() == b"ok"


def test_settings_overrides_reach_the_server(
    live_server_factory: LiveServerFactory,
) -> None:
    # CommonMiddleware checks the Host header against ALLOWED_HOSTS.
    server = live_server_factory(
        {
            "ALLOWED_HOSTS": ["example.com"],
            "MIDDLEWARE": ["django.middleware.common.CommonMiddleware"],
        }
    )
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(server.http_url("/http/"), timeout=5)
    excinfo.value.close()
    assert excinfo.value.code == 400
