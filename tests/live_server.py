"""Real servers for end-to-end tests: an ASGI server running the test project, and Redis.

``LiveServer`` runs uvicorn, hypercorn, daphne or granian (``server=``) through
``django_ws.asgi_servers.ServerProcess``, with its own settings overrides, so a
test can talk to it over a real socket, stop or kill it, and read what it
logged. ``PrivateRedis`` runs a redis-server that a test may stop and start
again without disturbing the shared Redis on port 6379.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from django_ws.asgi_servers import (
    POLL_INTERVAL,
    STARTUP_TIMEOUT,
    ServerProcess,
    free_port,
    port_accepts,
)

__all__ = [
    "DEFAULT_APP",
    "POLL_INTERVAL",
    "REPO_ROOT",
    "LiveServer",
    "PrivateRedis",
    "free_port",
    "port_accepts",
    "redis_server_executable",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_APP = "tests.asgi:application"


class LiveServer(ServerProcess):
    """An ASGI server serving ``app`` with ``settings_overrides`` on a free port.

    Use it as a context manager, or call ``start()`` and ``stop()``. Everything
    the process prints goes to a log file that ``log_text()`` reads.
    ``uvicorn_args`` are extra uvicorn options, so only go with uvicorn.

    On ``stop()`` uvicorn at once closes every open WebSocket with code 1012
    (service restart), waits for the app to return, then re-raises the SIGTERM:
    a clean stop returns -15. An app that never returns keeps uvicorn waiting,
    and ``stop()`` ends with SIGKILL (-9), unless ``--timeout-graceful-shutdown``
    was given: uvicorn then cancels it after that many seconds and returns -15.
    """

    def __init__(
        self,
        settings_overrides: dict[str, Any] | None = None,
        uvicorn_args: list[str] | None = None,
        *,
        server: str = "uvicorn",
        app: str = DEFAULT_APP,
        port: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        if uvicorn_args and server != "uvicorn":
            raise ValueError(f"uvicorn_args go with uvicorn, not {server}.")
        self.settings_overrides = dict(settings_overrides or {})
        self.uvicorn_args = list(uvicorn_args or [])
        log = tempfile.NamedTemporaryFile(
            prefix="django_ws_live_server_", suffix=".log", delete=False
        )
        log.close()
        super().__init__(
            server,
            app,
            port=port,
            cwd=REPO_ROOT,
            extra_args=self.uvicorn_args,
            log_path=log.name,
            startup_timeout=startup_timeout,
        )

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        pythonpath = [str(REPO_ROOT), env.get("PYTHONPATH", "")]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, pythonpath))
        env["PYTHONUNBUFFERED"] = "1"
        env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
        env["DJANGO_WS_TEST_SETTINGS"] = json.dumps(self.settings_overrides)
        database = _test_database_path()
        if database:
            env["DJANGO_WS_TEST_DB"] = database
        return env

    def start(self) -> LiveServer:
        """Start the server with this test run's settings and database; wait until it serves."""
        self.env = self.environment()
        super().start()
        return self

    def restart(self, timeout: float = 10.0) -> LiveServer:
        """Stop the server if it runs, then start it again on the same port."""
        self.stop(timeout)
        return self.start()

    def close(self) -> None:
        """Stop the server and delete its log file."""
        self.stop()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> LiveServer:
        return self if self.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<LiveServer {self.server} {self.app} on port {self.port}, {state}>"


# Redis processes still running when the interpreter exits (a test run
# interrupted before fixture teardown) are killed, so none outlives its run.
_running: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_running):
        _kill_process(process)


def _stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Send SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    _running.discard(process)


def _kill_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=5)
    _running.discard(process)


def _test_database_path() -> str | None:
    """Return the SQLite file this process uses, for a server to share it."""
    from django.conf import settings

    if not settings.configured:
        return None
    from django.db import connections

    database = connections["default"].settings_dict
    if database["ENGINE"] != "django.db.backends.sqlite3":
        return None
    return str(database["NAME"])


def redis_server_executable() -> str | None:
    """Return the redis-server to start private servers with, if there is one."""
    return os.environ.get("DJANGO_WS_TEST_REDIS_SERVER") or shutil.which("redis-server")


class PrivateRedis:
    """A redis-server of the test's own, on a free port, which it may stop.

    It keeps nothing on disk, so a restart starts empty, as after a crash.
    """

    def __init__(self, executable: str, port: int | None = None) -> None:
        self.executable = executable
        self.port = port if port is not None else free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = tempfile.TemporaryDirectory(prefix="django_ws_redis_")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def _log_path(self) -> Path:
        return Path(self._directory.name) / "redis.log"

    def log_text(self) -> str:
        path = self._log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 10.0) -> PrivateRedis:
        """Start redis-server and wait until it answers PING."""
        if self.running:
            raise RuntimeError("This Redis is already running.")
        self._process = subprocess.Popen(
            [
                self.executable,
                *("--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no"),
                *("--dir", self._directory.name, "--logfile", str(self._log_path)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _running.add(self._process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                _running.discard(self._process)
                raise RuntimeError(
                    f"redis-server exited with code {self._process.returncode}. "
                    f"Its log:\n{self.log_text()}"
                )
            if _redis_answers(self.port):
                return self
            time.sleep(POLL_INTERVAL)
        self.kill()
        raise RuntimeError(f"redis-server did not answer PING within {timeout} s.")

    def stop(self, timeout: float = 5.0) -> None:
        """Shut the server down (SIGTERM), SIGKILL after ``timeout``."""
        if self._process is not None:
            _stop_process(self._process, timeout)

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL)."""
        if self._process is not None:
            _kill_process(self._process)

    def close(self) -> None:
        self.stop()
        self._directory.cleanup()


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
