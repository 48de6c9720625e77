"""Real servers for end-to-end tests: uvicorn running the test project, and Redis.

``LiveServer`` runs ``python -m uvicorn`` in a subprocess with its own settings
overrides, so a test can talk to it over a real socket, stop or kill it, and read
what it logged. ``PrivateRedis`` runs a redis-server that a test may stop and
start again without disturbing the shared Redis on port 6379.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_APP = "tests.asgi:application"
STARTUP_TIMEOUT = 15.0
POLL_INTERVAL = 0.05
PORT_ATTEMPTS = 3

# Processes still running when the interpreter exits (a test run interrupted
# before fixture teardown) are killed, so no server outlives its test run.
_running: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_running):
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int) -> bool:
    """Tell whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop_process(process: subprocess.Popen[bytes], timeout: float) -> int:
    """Send SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; return the code."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    _running.discard(process)
    return process.returncode


def _kill_process(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=5)
    _running.discard(process)
    return process.returncode


class LiveServer:
    """A uvicorn process serving ``app`` with ``settings_overrides`` on a free port.

    Use it as a context manager, or call ``start()`` and ``stop()``. Everything
    the process prints goes to a log file that ``log_text()`` reads.

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
        app: str = DEFAULT_APP,
        port: int | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        self.settings_overrides = dict(settings_overrides or {})
        self.uvicorn_args = list(uvicorn_args or [])
        self.app = app
        self.port = port if port is not None else free_port()
        self._port_fixed = port is not None
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        log = tempfile.NamedTemporaryFile(
            prefix="django_ws_live_server_", suffix=".log", delete=False
        )
        log.close()
        self.log_path = Path(log.name)

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("The server is not started; call start() first.")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def ws_url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def http_url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def log_text(self) -> str:
        """Return everything the server printed so far, over all its starts."""
        return self.log_path.read_text(errors="replace")

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "uvicorn",
            self.app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--lifespan",
            "on",
            "--log-level",
            "info",
            *self.uvicorn_args,
        ]

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
        """Start the process and wait until it serves on its port.

        Another process may take a port from ``free_port()`` before uvicorn binds
        it; the first start then moves to another port. Restarts keep theirs.
        """
        if self.running:
            raise RuntimeError(f"The server is already running (pid {self.pid}).")
        for _ in range(PORT_ATTEMPTS):
            if self._spawn_and_wait():
                self._port_fixed = True
                return self
            self.port = free_port()
        raise RuntimeError(
            f"Ports were taken {PORT_ATTEMPTS} times. Its log:\n{self.log_text()}"
        )

    def _spawn_and_wait(self) -> bool:
        """Start uvicorn; return False if it lost its port to another process."""
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(self.command())}\n".encode())
            log.flush()
            start_of_log = log.tell()
            self._process = subprocess.Popen(
                self.command(),
                cwd=REPO_ROOT,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _running.add(self._process)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            # uvicorn prints this once it listens: unlike an accepted
            # connection, it cannot come from another process on the port.
            log_bytes = self.log_path.read_bytes()[start_of_log:]
            if b"Uvicorn running on" in log_bytes and port_accepts(self.port):
                return True
            if self._process.poll() is not None:
                _running.discard(self._process)
                if b"address already in use" in log_bytes and not self._port_fixed:
                    return False
                raise RuntimeError(
                    f"The server exited with code {self._process.returncode} "
                    f"before serving. Its log:\n{self.log_text()}"
                )
            time.sleep(POLL_INTERVAL)
        self.kill()
        raise RuntimeError(
            f"The server did not serve on port {self.port} within "
            f"{self.startup_timeout} s (the harness waits for uvicorn's "
            f"'Uvicorn running on' line: keep --log-level at info or debug). "
            f"Its log:\n{self.log_text()}"
        )

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop gracefully (SIGTERM), SIGKILL after ``timeout``; return the exit code.

        The code is -15 after a clean stop, -9 after SIGKILL, None if the server
        never started. The call blocks; in an async test, ``await
        asyncio.to_thread(server.stop)`` lets clients of the same loop answer.
        """
        if self._process is None:
            return None
        return _stop_process(self._process, timeout)

    def kill(self) -> int | None:
        """Kill the process abruptly (SIGKILL); return the exit code."""
        if self._process is None:
            return None
        return _kill_process(self._process)

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

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<LiveServer {self.app} on port {self.port}, {state}>"


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
