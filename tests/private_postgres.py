"""A PostgreSQL cluster of a test's own, which the test may stop and start again.

Made with Debian's ``initdb`` (once per test session, then copied) and run with
``postgres`` on a free 127.0.0.1 port, as the ``postgres`` user when the tests
run as root (PostgreSQL refuses to run as root). Its data stays on disk across a
restart, as a real server's would; the shared server on 5432 is never touched.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.live_server import POLL_INTERVAL

_template: Path | None = None
_running: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _stop_leftovers() -> None:
    for process in list(_running):
        if process.poll() is None:
            process.kill()


def postgres_bin() -> Path | None:
    """Return the directory of Debian's newest PostgreSQL binaries, if installed."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    return Path(found[-1]).parent if found else None


def _as_user() -> dict[str, Any]:
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


def _owned(path: Path) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)
        for root, directories, files in os.walk(path):
            for name in directories + files:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def _template_cluster(bin_dir: Path) -> Path:
    global _template
    if _template is None:
        directory = Path(tempfile.mkdtemp(prefix="django_ws_pg_template_"))
        _owned(directory)
        atexit.register(shutil.rmtree, directory, True)
        data = directory / "data"
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "--no-sync", "-E", "UTF8", "--no-instructions"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            **_as_user(),
        )
        _template = data
    return _template


class PrivatePostgres:
    """A ``postgres`` server on ``port`` with a data directory of its own."""

    def __init__(self, bin_dir: Path, port: int) -> None:
        self.bin_dir = bin_dir
        self.port = port
        self._directory = Path(tempfile.mkdtemp(prefix="django_ws_pg_"))
        self.data = self._directory / "data"
        shutil.copytree(_template_cluster(bin_dir), self.data)
        self.data.chmod(0o700)
        _owned(self._directory)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def log_text(self) -> str:
        path = self._directory / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self, timeout: float = 20.0) -> PrivatePostgres:
        """Start the server and wait until it answers a query."""
        if self.running:
            raise RuntimeError("This PostgreSQL is already running.")
        log = open(self._directory / "postgres.log", "ab")  # noqa: SIM115
        self._process = subprocess.Popen(
            [
                str(self.bin_dir / "postgres"),
                *("-D", str(self.data), "-p", str(self.port)),
                *("-k", str(self._directory), "-c", "listen_addresses=127.0.0.1"),
                *("-c", "fsync=off", "-c", "max_connections=50"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            **_as_user(),
        )
        log.close()
        _running.add(self._process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                _running.discard(self._process)
                raise RuntimeError(
                    f"postgres exited with code {self._process.returncode}. "
                    f"Its log:\n{self.log_text()}"
                )
            try:
                with psycopg.connect(self.conninfo, connect_timeout=1) as connection:
                    connection.execute("SELECT 1")
                return self
            except psycopg.OperationalError:
                time.sleep(POLL_INTERVAL)
        self.kill()
        raise RuntimeError(f"postgres did not answer within {timeout} s.")

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT: sessions closed, data kept), SIGKILL after ``timeout``."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        _running.discard(process)

    def kill(self) -> None:
        """Kill the postmaster abruptly (SIGKILL)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(5)
            _running.discard(process)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._directory, ignore_errors=True)
