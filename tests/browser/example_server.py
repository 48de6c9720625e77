"""The example project under ``manage.py runserver``, as the README's first command runs it.

``ExampleServer`` prepares a database of its own (``migrate`` and
``ensure_demo_user``, like ``scripts/example.sh``) and runs ``runserver`` on a
free port in a process group of its own, so that stopping it also stops the
autoreloader's child process. Everything the server prints goes to a log file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

from django_ws.asgi_servers import ServerProcess

EXAMPLE_DIR = Path(__file__).resolve().parent.parent.parent / "example"
STARTUP_TIMEOUT = 20.0
COMMAND_TIMEOUT = 60.0


class ExampleServer(ServerProcess):
    """``manage.py runserver 127.0.0.1:<port>`` of a project directory (the example).

    ``reload=False`` passes ``--noreload``: one process, which ``kill()`` kills as
    a crash would. ``project_dir`` may be a copy of the example, for tests that
    edit its code; ``database`` another server's, to share it; ``env`` adds
    variables such as ``DJANGO_WS_REDIS_URL``. runserver serves with uvicorn;
    ``ServerProcess`` runs it in a process group of its own, so that stopping it
    also stops the autoreloader's child process.
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
        self._directory = tempfile.TemporaryDirectory(prefix="django_ws_example_")
        self.database = database or Path(self._directory.name) / "example.sqlite3"
        super().__init__(
            "uvicorn",
            "exampleproject.asgi:application",
            port=port,
            cwd=project_dir,
            log_path=Path(self._directory.name) / "runserver.log",
            startup_timeout=STARTUP_TIMEOUT,
            process_group=True,
        )
        # The port is the caller's or free_port()'s: runserver never moves off it.
        self._port_fixed = True
        self.env = self.environment()

    def url(self, path: str = "/") -> str:  # type: ignore[override]
        return self.http_url(path)

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

    def ready_text(self) -> bytes | None:
        return None  # runserver's own lines vary; its port accepting is enough

    def start(self) -> ExampleServer:
        """Start runserver and wait until its port accepts connections."""
        super().start()
        return self

    def stop(self, timeout: float = 10.0) -> None:  # type: ignore[override]
        """Stop the server (SIGTERM to its process group, SIGKILL after ``timeout``)."""
        super().stop(timeout)

    def kill(self) -> None:  # type: ignore[override]
        """Kill the server abruptly (SIGKILL), as a crash would."""
        super().kill()

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
