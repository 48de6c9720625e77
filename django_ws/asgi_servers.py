"""Run an ASGI app under uvicorn, hypercorn, daphne or granian in a subprocess.

django-ws promises to work on any ASGI server, and the servers differ in what
they do with the same ASGI events (refusals, close codes, shutdown, back
pressure). ``ServerProcess`` launches each one the same way, with the flags we
recommend for WebSockets in production, so tests, examples and benchmarks can
compare them: it binds 127.0.0.1 on a given or free port, waits until the
server serves, captures everything it prints, and stops it by PID (SIGTERM, a
bounded wait, then SIGKILL). The benchmarks start it at warning level, under
``taskset`` and with room for 10,000+ sockets: see ``ServerProcess``'s options.
"""

from __future__ import annotations

import atexit
import functools
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

__all__ = [
    "SERVERS",
    "ServerProcess",
    "free_port",
    "port_accepts",
    "recommended_args",
]

SERVERS = ("uvicorn", "hypercorn", "daphne", "granian")
STARTUP_TIMEOUT = 15.0
POLL_INTERVAL = 0.05
PORT_ATTEMPTS = 3
PING_INTERVAL = 20
PING_TIMEOUT = 20

# Processes still running when the interpreter exits (a run interrupted before
# its cleanup) are killed, so no server outlives the process that started it.
_running: set[subprocess.Popen[bytes]] = set()
_groups: set[int] = set()


@atexit.register
def _kill_leftovers() -> None:
    for process in list(_running):
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    for group in list(_groups):
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int, host: str = "127.0.0.1") -> bool:
    """Tell whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class _Server:
    """How to command one server, and the line it prints once it listens."""

    module: str
    command: Callable[[str, str, int, float | None], list[str]]
    # A line only the server itself prints once it listens: an accepted
    # connection alone may come from another process that took the port.
    ready: Callable[[int], bytes]


def _uvicorn(app: str, host: str, port: int, graceful: float | None) -> list[str]:
    args = [app, "--host", host, "--port", str(port), "--lifespan", "on"]
    args += ["--log-level", "info"]
    args += ["--ws-ping-interval", str(PING_INTERVAL)]
    args += ["--ws-ping-timeout", str(PING_TIMEOUT)]
    if graceful is not None:
        args += ["--timeout-graceful-shutdown", _seconds(graceful)]
    return args


def _hypercorn(app: str, host: str, port: int, graceful: float | None) -> list[str]:
    # hypercorn always runs the lifespan protocol; it has no switch for it.
    args = [app, "--bind", f"{host}:{port}", "--log-level", "INFO"]
    args += ["--error-logfile", "-", "--websocket-ping-interval", str(PING_INTERVAL)]
    if graceful is not None:
        args += ["--graceful-timeout", _seconds(graceful)]
    return args


def _daphne(app: str, host: str, port: int, graceful: float | None) -> list[str]:
    # daphne speaks no lifespan protocol. Its 1 MiB message limit stays: the
    # tests see what a default install does (docs/servers.md advises raising it).
    args = ["--bind", host, "--port", str(port), "--verbosity", "1"]
    args += ["--ping-interval", str(PING_INTERVAL)]
    args += ["--ping-timeout", str(PING_TIMEOUT)]
    if graceful is not None:
        args += ["--application-close-timeout", _seconds(graceful)]
    return [*args, app]


def _granian(app: str, host: str, port: int, graceful: float | None) -> list[str]:
    # ``asgi`` (not ``asginl``) runs the lifespan protocol; one worker keeps
    # the app's state in one process, as under the other servers here.
    args = [app, "--interface", "asgi", "--host", host, "--port", str(port)]
    args += ["--workers", "1", "--ws", "--log-level", "info"]
    if graceful is not None:
        args += ["--workers-kill-timeout", str(max(1, round(graceful)))]
    return args


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_SERVERS: dict[str, _Server] = {
    "uvicorn": _Server(
        "uvicorn",
        _uvicorn,
        lambda port: f"Uvicorn running on http://127.0.0.1:{port} ".encode(),
    ),
    "hypercorn": _Server(
        "hypercorn",
        _hypercorn,
        lambda port: f"Running on http://127.0.0.1:{port} ".encode(),
    ),
    "daphne": _Server(
        "daphne",
        _daphne,
        lambda port: f"Listening on TCP address 127.0.0.1:{port}".encode(),
    ),
    "granian": _Server("granian", _granian, lambda port: b"Started worker-1"),
}


def recommended_args(
    server: str,
    app: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    graceful_timeout: float | None = None,
) -> list[str]:
    """Return the arguments of ``python -m <server>`` that serve ``app`` as we advise.

    Lifespan on where the server has it, WebSocket pings every 20 s, logs at
    info level (the harness waits for the server's "listening" line), and a
    bounded graceful shutdown when ``graceful_timeout`` is given.
    """
    return _spec(server).command(app, host, port, graceful_timeout)


def _spec(server: str) -> _Server:
    try:
        return _SERVERS[server]
    except KeyError:
        raise ValueError(
            f"Unknown ASGI server {server!r}: choose one of {', '.join(SERVERS)}."
        ) from None


class ServerProcess:
    """One ASGI server process serving ``app`` (``"module:attr"``) on 127.0.0.1.

    ``env`` is the whole environment of the process (default: this one's);
    ``cwd`` its working directory; ``extra_args`` go after the recommended
    ones, so they can override them. Everything the process prints goes to
    ``log_path`` (a temporary file by default), which ``log_text()`` reads.
    ``process_group=True`` starts it in a process group of its own and signals
    the whole group, for a command that forks children of its own (a reloader).

    By default the server counts as started once it has printed its "listening"
    line at info level. ``wait_for_log=False`` trusts a listening socket of the
    server's own instead, so it may run at ``--log-level warning`` (at info
    level uvicorn logs every WebSocket it accepts, which a benchmark pays for).
    ``command_prefix`` goes before the command, for a wrapper that execs it
    (``("taskset", "-c", "0")``), so ``pid`` stays the server's. ``nofile`` sets
    the process's soft limit of open files (RLIMIT_NOFILE), raising the hard
    one if allowed (as root), else stopping at it: 10,000 sockets need more
    than the usual 1,024.

    Subclasses may override ``command()`` and ``ready_text()`` to run another
    command that serves the app, such as ``manage.py runserver``.
    """

    def __init__(
        self,
        server: str = "uvicorn",
        app: str = "",
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        graceful_timeout: float | None = None,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
        python: str = sys.executable,
        process_group: bool = False,
        wait_for_log: bool = True,
        command_prefix: Sequence[str] = (),
        nofile: int | None = None,
    ) -> None:
        if not app:
            raise ValueError("ServerProcess needs an app, as 'module:attr'.")
        self.server = server
        self._spec = _spec(server)
        self.app = app
        self.host = "127.0.0.1"
        self.port = port if port is not None else free_port()
        self._port_fixed = port is not None
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.extra_args = list(extra_args)
        self.graceful_timeout = graceful_timeout
        self.startup_timeout = startup_timeout
        self.python = python
        self.process_group = process_group
        self.wait_for_log = wait_for_log
        self.command_prefix = list(command_prefix)
        self.nofile = nofile
        if log_path is None:
            log = tempfile.NamedTemporaryFile(
                prefix=f"django_ws_{server}_", suffix=".log", delete=False
            )
            log.close()
            log_path = log.name
        self.log_path = Path(log_path)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The PID of the server's main process."""
        if self._process is None:
            raise RuntimeError("The server is not started; call start() first.")
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.returncode

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ws_url(self, path: str = "/") -> str:
        return f"ws://{self.host}:{self.port}/{path.lstrip('/')}"

    def http_url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}/{path.lstrip('/')}"

    def command(self) -> list[str]:
        args = self._spec.command(self.app, self.host, self.port, self.graceful_timeout)
        return [self.python, "-m", self._spec.module, *args, *self.extra_args]

    def ready_text(self) -> bytes | None:
        """Return what the server prints once it listens; None to trust the port alone."""
        return self._spec.ready(self.port) if self.wait_for_log else None

    def log_text(self) -> str:
        """Return everything the server printed so far, over all its starts."""
        return self.log_path.read_text(errors="replace")

    def process_ids(self) -> list[int]:
        """Return the PIDs of the server and its descendants (granian's workers)."""
        pids = [self.pid]
        for pid in pids:  # grows while walking: bounded by the process tree
            children = Path(f"/proc/{pid}/task/{pid}/children")
            try:
                pids += [int(child) for child in children.read_text().split()]
            except OSError:
                continue
        return pids

    def start(self) -> ServerProcess:
        """Start the process and wait until it serves on its port.

        Another process may take a port from ``free_port()`` before the server
        binds it; the first start then moves to another port. Restarts keep theirs.
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
        """Start the server; return False if it lost its port to another process."""
        command = [*self.command_prefix, *self.command()]
        limit: Callable[[], None] | None = None
        if self.nofile is not None:
            limit = functools.partial(_set_nofile, self.nofile)
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(command)}\n".encode())
            log.flush()
            start_of_log = log.tell()
            self._process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.process_group,
                preexec_fn=limit,
            )
        _running.add(self._process)
        if self.process_group:
            _groups.add(self._process.pid)
        ready = self.ready_text()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            log_bytes = self.log_path.read_bytes()[start_of_log:]
            if ready is None:
                if self._listens():
                    return True
            elif ready in log_bytes and port_accepts(self.port, self.host):
                return True
            if self._process.poll() is not None:
                _running.discard(self._process)
                if _lost_port(log_bytes) and not self._port_fixed:
                    return False
                raise RuntimeError(
                    f"{self.server} exited with code {self._process.returncode} "
                    f"before serving. Its log:\n{self.log_text()}"
                )
            time.sleep(POLL_INTERVAL)
        self.kill()
        waited_for = (
            "a listening socket of its own"
            if ready is None
            else f"it to print {ready!r}: keep its log level at info"
        )
        raise RuntimeError(
            f"{self.server} did not serve on port {self.port} within "
            f"{self.startup_timeout} s (the harness waits for {waited_for}). "
            f"Its log:\n{self.log_text()}"
        )

    def _listens(self) -> bool:
        """Tell whether the port accepts connections on a socket the server holds.

        Without a "listening" line to wait for, an accepted connection alone may
        come from another process that held the port first.
        """
        if not port_accepts(self.port, self.host):
            return False
        inodes = _listening_inodes(self.port)
        if inodes is None:  # no /proc/net/tcp: the port is all there is to trust
            return True
        for pid in self.process_ids():
            try:
                fds = list(Path(f"/proc/{pid}/fd").iterdir())
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(fd) in inodes:
                        return True
                except OSError:
                    continue
        return False

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop gracefully (SIGTERM), SIGKILL after ``timeout``; return the exit code.

        None if the server never started. The call blocks; in an async test,
        ``await asyncio.to_thread(server.stop)`` lets clients of the same loop
        answer the server's close frames.
        """
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            self._signal(process, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return self.kill()
        if self.process_group:  # a child (the reloader's) may outlive its parent
            self._signal(process, signal.SIGKILL)
            _groups.discard(process.pid)
        _running.discard(process)
        return process.returncode

    def kill(self) -> int | None:
        """Kill the process and its workers abruptly (SIGKILL), as a crash would.

        granian and hypercorn serve from worker processes: killing only the main
        one would leave a worker serving the port. Return the main one's code.
        """
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            workers = self.process_ids()[1:]
            self._signal(process, signal.SIGKILL)
            process.wait(timeout=5)
            for pid in workers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.process_group:
            self._signal(process, signal.SIGKILL)
            _groups.discard(process.pid)
        _running.discard(process)
        return process.returncode

    def _signal(self, process: subprocess.Popen[bytes], sig: int) -> None:
        try:
            if self.process_group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        except ProcessLookupError:
            pass

    def __enter__(self) -> ServerProcess:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<ServerProcess {self.server} {self.app} on port {self.port}, {state}>"


def _listening_inodes(port: int) -> set[str] | None:
    """Return the ``socket:[inode]`` links of the sockets listening on ``port``.

    None where ``/proc/net/tcp`` cannot be read (not Linux).
    """
    try:
        table = Path("/proc/net/tcp").read_text()
    except OSError:
        return None
    listening = "0A"
    inodes = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == listening:
            inodes.add(f"socket:[{fields[9]}]")
    return inodes


def _set_nofile(soft: int) -> None:
    """Set this process's limit of open files (run in the child, before exec)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, soft))
            return
        except (ValueError, OSError):  # only root may raise the hard limit
            soft = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _lost_port(log: bytes) -> bool:
    text = log.lower()
    return b"address already in use" in text or b"address in use" in text
