"""The example project under ``manage.py runserver``, as the README's first command runs it.

``ExampleServer`` prepares a database of its own (``migrate`` and
``ensure_demo_user``, like ``scripts/example.sh``) and runs ``runserver`` on a
free port in a process group of its own, so that stopping it also stops the
autoreloader's child process. Everything the server prints goes to a log file.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

from tests.live_server import POLL_INTERVAL, free_port, port_accepts

EXAMPLE_DIR = Path(__file__).resolve().parent.parent.parent / "example"
STARTUP_TIMEOUT = 20.0
COMMAND_TIMEOUT = 60.0

# Process groups still running when the interpreter exits (an interrupted run).
_groups: set[int] = set()


@atexit.register
def _kill_leftovers() -> None:
    for group in list(_groups):
        _signal_group(group, signal.SIGKILL)


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        _groups.discard(group)


class ExampleServer:
    """``manage.py runserver 127.0.0.1:<port>`` of a project directory (the example).

    ``reload=False`` passes ``--noreload``: one process, which ``kill()`` kills as
    a crash would. ``project_dir`` may be a copy of the example, for tests that
    edit its code; ``database`` another server's, to share it; ``env`` adds
    variables such as ``DJANGO_WS_REDIS_URL``.
    """

    def __init__(
        self,
        *,
        project_dir: Path = EXAMPLE_DIR,
        reload: bool = False,
        port: int | None = None,
        database: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.project_dir = project_dir
        self.extra_env = dict(env or {})
        self.reload = reload
        self.port = port if port is not None else free_port()
        self._directory = tempfile.TemporaryDirectory(prefix="django_ws_example_")
        self.database = database or Path(self._directory.name) / "example.sqlite3"
        self.log_path = Path(self._directory.name) / "runserver.log"
        self._process: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def environment(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("DJANGO_WS_", "DJANGO_SETTINGS_MODULE"))
        }
        env["DJANGO_SETTINGS_MODULE"] = "exampleproject.settings"
        env["DJANGO_WS_EXAMPLE_DB"] = str(self.database)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``manage.py`` with ``args`` to completion; raise with its output on failure."""
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=self.project_dir,
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return result

    def prepare(self) -> ExampleServer:
        """Create the database and the demo users, as ``scripts/example.sh`` does."""
        self.manage("migrate", "--noinput")
        self.manage("ensure_demo_user")
        return self

    def command(self) -> list[str]:
        reload = [] if self.reload else ["--noreload"]
        return [sys.executable, "manage.py", "runserver", *reload, f"127.0.0.1:{self.port}"]

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> ExampleServer:
        """Start runserver and wait until its port accepts connections."""
        if self.running:
            raise RuntimeError("The example server is already running.")
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(self.command())}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.project_dir,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the reloader's too
            )
        _groups.add(self._process.pid)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.stop()
                raise RuntimeError(
                    f"runserver exited with code {self._process.returncode} before "
                    f"accepting connections. Its log:\n{self.log_text()}"
                )
            if port_accepts(self.port):
                return self
            time.sleep(POLL_INTERVAL)
        self.kill()
        raise RuntimeError(
            f"runserver did not accept connections on port {self.port} within "
            f"{STARTUP_TIMEOUT} s. Its log:\n{self.log_text()}"
        )

    def _end(self, sig: int, timeout: float) -> None:
        process = self._process
        if process is None:
            return
        _signal_group(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        # The reloader's child may outlive its parent for a moment: end it too.
        _signal_group(process.pid, signal.SIGKILL)
        _groups.discard(process.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM to its process group, SIGKILL after ``timeout``)."""
        self._end(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        self._end(signal.SIGKILL, 5.0)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def close(self) -> None:
        """Stop the server and delete its database and log."""
        self.stop()
        self._directory.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def copy_example(destination: Path) -> Path:
    """Copy the example project (without databases and caches) to ``destination``."""
    shutil.copytree(
        EXAMPLE_DIR,
        destination,
        ignore=shutil.ignore_patterns("*.sqlite3", "__pycache__", "*.pyc"),
    )
    return destination
