"""Run the django-ws benchmark suite and write docs/benchmarks.md with charts.

Each target is one uvicorn process (httptools, uvloop, websockets-sansio) pinned
to core 0; the compiled load generator (benchmarks/loadgen) is pinned to core 1
and reports its own CPU use so it can be seen not to be the bottleneck. Targets
run interleaved (run 1 of every target, then run 2, ...) and every ratio is taken
between numbers of the same invocation.

    bash benchmarks/setup.sh
    benchmarks/.venv/bin/python benchmarks/run.py --scenario all
    benchmarks/.venv/bin/python benchmarks/run.py --scenario pingpong --targets raw,djangows
    benchmarks/.venv/bin/python benchmarks/run.py --smoke --scenario all --out /tmp/x

Everything listens on and talks to 127.0.0.1 only. Every loop is bounded in count
and time, and only processes started here are stopped, by PID.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
APPS = HERE / "apps"
LOADGEN_SRC = HERE / "loadgen" / "loadgen.c"
LOADGEN = HERE / "loadgen" / "loadgen"
SELFTEST = HERE / "loadgen" / "selftest.py"
VENV = HERE / ".venv"
VENV_102 = HERE / ".venv-102"
SERVER_CPU = "0"
LOADGEN_CPU = "1"
HOST = "127.0.0.1"
NOFILE = 65536


class BenchError(Exception):
    """A target could not be measured (server did not start, loadgen failed...)."""


# --------------------------------------------------------------------------
# Targets


@dataclass(frozen=True)
class Target:
    """One implementation under test: an ASGI app served by uvicorn."""

    name: str
    description: str
    app: str = ""
    venv: Path = VENV
    lifespan: str = "off"
    env: tuple[tuple[str, str], ...] = ()
    prefix: str = ""  # prefix of the /echo, /room and /trigger paths
    session: bool = False  # send a logged-in session cookie
    needs: str = ""  # capability that must be available (see probe_capabilities)
    base: str = ""  # the --targets name that selects this row
    sync_kind: str = ""  # sync-broadcast scenario: raw, djangows or channels

    @property
    def selector(self) -> str:
        return self.base or self.name

    @property
    def settings_module(self) -> str | None:
        return dict(self.env).get("DJANGO_SETTINGS_MODULE")


def _dj(settings: str, **env: str) -> tuple[tuple[str, str], ...]:
    return (("DJANGO_SETTINGS_MODULE", settings), *sorted(env.items()))


RAW = Target("raw", "bare ASGI app, json.loads/json.dumps", "raw:app", lifespan="on")
STARLETTE = Target(
    "starlette",
    "Starlette WebSocketEndpoint, encoding='json'",
    "starlette_app:app",
    lifespan="on",
    needs="starlette",
)
CHANNELS = Target(
    "channels",
    "Channels 4 AsyncJsonWebsocketConsumer, InMemoryChannelLayer",
    "channels_project.asgi:application",
    env=_dj("channels_project.settings", BENCH_AUTH="0", BENCH_LAYER="memory"),
    needs="channels",
)
CHANNELS_AUTH = Target(
    "channels-auth",
    "the same behind AuthMiddlewareStack, no session cookie (anonymous)",
    CHANNELS.app,
    env=_dj("channels_project.settings", BENCH_AUTH="1", BENCH_LAYER="memory"),
    needs="channels",
)
CHANNELS_LOGIN = Target(
    "channels-login",
    "the same behind AuthMiddlewareStack, logged-in session cookie",
    CHANNELS.app,
    env=CHANNELS_AUTH.env,
    session=True,
    needs="channels",
)
DJANGOWS = Target(
    "djangows",
    "django-ws WebSocketHandler subclass, MemoryBackend",
    "djangows_project.asgi:application",
    lifespan="on",
    env=_dj("djangows_project.settings", BENCH_AUTH="0", BENCH_BROADCAST="memory"),
    needs="djangows",
)
DJANGOWS_AUTH = Target(
    "djangows-auth",
    "the same with WS_MIDDLEWARE AuthMiddleware, no session cookie (anonymous)",
    DJANGOWS.app,
    lifespan="on",
    env=_dj("djangows_project.settings", BENCH_AUTH="1", BENCH_BROADCAST="memory"),
    needs="djangows",
)
DJANGOWS_LOGIN = Target(
    "djangows-login",
    "the same with WS_MIDDLEWARE AuthMiddleware, logged-in session cookie",
    DJANGOWS.app,
    lifespan="on",
    env=DJANGOWS_AUTH.env,
    session=True,
    needs="djangows",
)
DJANGOWS_DSL = Target(
    "djangows-dsl",
    "django-ws @ws_route functions, MemoryBackend",
    DJANGOWS.app,
    lifespan="on",
    env=DJANGOWS.env,
    prefix="/dsl",
    needs="djangows-dsl",
)
DJANGOWS_102 = Target(
    "djangows102",
    "django-ws 1.0.2 from PyPI (own venv)",
    "djangows102_project.asgi:application",
    venv=VENV_102,
    env=_dj("djangows102_project.settings"),
    needs="djangows102",
)

# Broadcast through Redis: two processes share the benchmark's own redis-server.
RAW_REDIS = Target(
    "raw",
    "bare ASGI app, redis-py PUBLISH + one SUBSCRIBE per process",
    RAW.app,
    lifespan="on",
    env=(("RAW_BROADCAST", "redis"),),
    needs="redis",
)
DJANGOWS_REDIS = Target(
    "djangows",
    "django-ws subclass, RedisBackend",
    DJANGOWS.app,
    lifespan="on",
    env=_dj("djangows_project.settings", BENCH_AUTH="0", BENCH_BROADCAST="redis"),
    needs="djangows-redis",
)
DJANGOWS_DSL_REDIS = Target(
    "djangows-dsl",
    "django-ws @ws_route, RedisBackend",
    DJANGOWS.app,
    lifespan="on",
    env=DJANGOWS_REDIS.env,
    prefix="/dsl",
    needs="djangows-redis",
)
CHANNELS_REDIS = Target(
    "channels-redis",
    "Channels, channels_redis RedisChannelLayer",
    CHANNELS.app,
    env=_dj("channels_project.settings", BENCH_AUTH="0", BENCH_LAYER="redis"),
    needs="channels-redis",
    base="channels",
)
CHANNELS_PUBSUB = Target(
    "channels-pubsub",
    "Channels, channels_redis RedisPubSubChannelLayer",
    CHANNELS.app,
    env=_dj("channels_project.settings", BENCH_AUTH="0", BENCH_LAYER="pubsub"),
    needs="channels-redis",
    base="channels",
)

# broadcast_sync from a plain process (no server).
SYNC_TARGETS = [
    Target(
        "raw-redis",
        "redis-py Redis.publish (sync)",
        sync_kind="raw",
        needs="redis",
        base="raw",
    ),
    Target(
        "djangows-memory",
        "django_ws.broadcast_sync, MemoryBackend",
        sync_kind="djangows",
        env=DJANGOWS.env,
        needs="djangows-broadcast",
        base="djangows",
    ),
    Target(
        "djangows-redis",
        "django_ws.broadcast_sync, RedisBackend",
        sync_kind="djangows",
        env=DJANGOWS_REDIS.env,
        needs="djangows-redis",
        base="djangows",
    ),
    Target(
        "channels-memory",
        "async_to_sync(group_send), InMemoryChannelLayer",
        sync_kind="channels",
        env=CHANNELS.env,
        needs="channels",
        base="channels",
    ),
    Target(
        "channels-redis",
        "async_to_sync(group_send), RedisChannelLayer",
        sync_kind="channels",
        env=CHANNELS_REDIS.env,
        needs="channels-redis",
        base="channels",
    ),
    Target(
        "channels-pubsub",
        "async_to_sync(group_send), RedisPubSubChannelLayer",
        sync_kind="channels",
        env=CHANNELS_PUBSUB.env,
        needs="channels-redis",
        base="channels",
    ),
]

ALL_SERVER_TARGETS = [
    RAW,
    STARLETTE,
    CHANNELS,
    CHANNELS_AUTH,
    DJANGOWS,
    DJANGOWS_AUTH,
    DJANGOWS_DSL,
    DJANGOWS_102,
]
# Connection churn also measures a logged-in session cookie: the session and the
# user are then loaded from the database on every connection.
CHURN_TARGETS = [
    RAW,
    STARLETTE,
    CHANNELS,
    CHANNELS_AUTH,
    CHANNELS_LOGIN,
    DJANGOWS,
    DJANGOWS_AUTH,
    DJANGOWS_LOGIN,
    DJANGOWS_DSL,
    DJANGOWS_102,
]
TARGET_NAMES = [t.name for t in CHURN_TARGETS] + [
    "channels-redis",
    "channels-pubsub",
]


# --------------------------------------------------------------------------
# Parameters


@dataclass
class Params:
    runs: int = 5
    idle_runs: int = 3
    broadcast_runs: int = 5
    pingpong_connections: tuple[int, ...] = (1, 50)
    pingpong_duration: float = 5.0
    pingpong_warmup: float = 1.0
    churn_workers: int = 20
    churn_duration: float = 5.0
    churn_warmup: float = 1.0
    idle_counts: tuple[int, ...] = (2000, 10000)
    idle_settle: float = 3.0
    broadcast_members: tuple[int, ...] = (1000, 2000)
    broadcast_rounds: int = 15
    broadcast_warmup_rounds: int = 3
    redis_members_per_server: int = 500
    sync_calls: int = 5000
    sync_warmup: int = 200


SMOKE = Params(
    runs=1,
    idle_runs=1,
    broadcast_runs=1,
    pingpong_connections=(1, 10),
    pingpong_duration=0.3,
    pingpong_warmup=0.1,
    churn_workers=5,
    churn_duration=0.3,
    churn_warmup=0.1,
    idle_counts=(100,),
    idle_settle=0.3,
    broadcast_members=(50,),
    broadcast_rounds=3,
    broadcast_warmup_rounds=1,
    redis_members_per_server=25,
    sync_calls=100,
    sync_warmup=10,
)


# --------------------------------------------------------------------------
# Processes


def raise_nofile() -> None:
    """preexec_fn: allow 10,000+ sockets per process (root may raise the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limits in ((NOFILE, max(hard, NOFILE)), (max(soft, min(hard, NOFILE)), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limits)
            return
        except (ValueError, OSError):
            continue


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """Stop one process we started: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def wait_for_port(
    port: int, proc: subprocess.Popen[Any], log: Path, timeout: float = 40.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode}: {tail(log)}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError(
        f"server did not listen on {port} within {timeout:.0f}s: {tail(log)}"
    )


def tail(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(
            path.read_text(errors="replace").strip().splitlines()[-lines:]
        )
    except OSError:
        return ""


class Server:
    """One uvicorn process for ``target``, pinned to the server core."""

    def __init__(
        self, target: Target, ctx: Context, extra_env: dict[str, str] | None = None
    ):
        self.target = target
        self.ctx = ctx
        self.port = free_port()
        self.env = {
            **os.environ,
            **dict(target.env),
            **ctx.target_env(target),
            **(extra_env or {}),
        }
        self.log = ctx.workdir / f"server-{target.name}-{self.port}.log"
        self.proc: subprocess.Popen[Any] | None = None

    def command(self) -> list[str]:
        return [
            "taskset",
            "-c",
            SERVER_CPU,
            str(self.target.venv / "bin" / "python"),
            "-m",
            "uvicorn",
            self.target.app,
            "--app-dir",
            str(APPS),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--ws",
            "websockets-sansio",
            "--lifespan",
            self.target.lifespan,
            "--log-level",
            "warning",
            "--no-access-log",
        ]

    def __enter__(self) -> Server:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=APPS,
                preexec_fn=raise_nofile,
            )
        try:
            wait_for_port(self.port, self.proc, self.log)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: Any, error: Any, traceback: Any) -> None:
        self.stop()
        if isinstance(error, BenchError):
            log_tail = tail(self.log)
            if log_tail and log_tail not in str(error):
                raise BenchError(f"{error} | {self.target.name} server log: {log_tail}")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def check_alive(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise BenchError(f"server died: {tail(self.log)}")

    def path(self, name: str) -> str:
        return f"{self.target.prefix}/{name}"


class RedisServer:
    """A private redis-server on a free port (the shared 6379 is left alone)."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[Any] | None = None
        self.url = f"redis://{HOST}:{self.port}/0"

    def __enter__(self) -> RedisServer:
        log = self.workdir / "redis.log"
        self.proc = subprocess.Popen(
            [
                "taskset",
                "-c",
                LOADGEN_CPU,
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                HOST,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.cli("PING", check=False).strip() == "PONG":
                return self
            time.sleep(0.05)
        stop_process(self.proc)
        raise BenchError(f"redis-server did not start: {tail(log)}")

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def cli(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(
            ["redis-cli", "-h", HOST, "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if check and out.returncode:
            raise BenchError(f"redis-cli {' '.join(args)}: {out.stderr}")
        return out.stdout

    def commandstats(self) -> dict[str, int]:
        stats = {}
        for line in self.cli("INFO", "commandstats").splitlines():
            if line.startswith("cmdstat_"):
                name, _, rest = line.partition(":")
                calls = dict(kv.split("=", 1) for kv in rest.split(","))["calls"]
                stats[name[len("cmdstat_") :]] = int(calls)
        return stats


def run_loadgen(
    args: list[str],
    timeout: float,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run the loadgen pinned to its core.

    ``on_event`` runs at each of its ``{"event": ...}`` lines (``ready``, and
    ``done`` in broadcast mode), after which the loadgen is told to go on.
    """
    cmd = [
        "taskset",
        "-c",
        LOADGEN_CPU,
        str(LOADGEN),
        *args,
        "--timeout",
        f"{timeout:.0f}",
    ]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=raise_nofile,
    )
    killer = threading.Timer(timeout + 20, proc.kill)  # belt and braces over --timeout
    killer.start()
    result = None
    try:
        assert proc.stdout is not None and proc.stdin is not None
        for line in proc.stdout:
            data = json.loads(line)
            if "event" in data:
                if on_event is not None:
                    on_event(data)
                with contextlib.suppress(BrokenPipeError):
                    proc.stdin.write("\n")
                    proc.stdin.flush()
            else:
                result = data
        proc.wait(timeout=30)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if result is None:
        err = proc.stderr.read() if proc.stderr else ""
        raise BenchError(
            f"loadgen gave no result (exit {proc.returncode}): {err.strip()}"
        )
    if not result.get("ok"):
        raise BenchError(
            f"loadgen failed: {result.get('error')}: {json.dumps(result)[:300]}"
        )
    return result


LOADGEN_ERROR_FIELDS = (
    "connect_errors",
    "handshake_errors",
    "protocol_errors",
    "mismatches",
    "unexpected_closes",
    "close_timeouts",
)


def loadgen_errors(result: dict[str, Any]) -> int:
    return sum(int(result.get(k, 0)) for k in LOADGEN_ERROR_FIELDS)


# --------------------------------------------------------------------------
# Context: what is installed, where results go


@dataclass
class Context:
    params: Params
    workdir: Path
    smoke: bool
    redis: RedisServer | None = None
    capabilities: dict[str, str] = field(default_factory=dict)  # name -> "" or why not
    sessions: dict[str, str] = field(default_factory=dict)  # target name -> session key

    def available(self, target: Target) -> str:
        """Return "" if ``target`` can run, else why not."""
        if not target.needs:
            return ""
        return self.capabilities.get(target.needs, "not probed")

    def db_path(self, target: Target) -> Path:
        return self.workdir / f"db-{target.settings_module or target.name}.sqlite3"

    def target_env(self, target: Target) -> dict[str, str]:
        env = {"BENCH_DB": str(self.db_path(target)), "PYTHONDONTWRITEBYTECODE": "1"}
        if self.redis is not None:
            env["REDIS_URL"] = self.redis.url
        return env

    def session_headers(self, target: Target) -> list[str]:
        """Loadgen --header args with a logged-in session cookie, made once per target."""
        if not target.session:
            return []
        if target.name not in self.sessions:
            env = {**os.environ, **dict(target.env), **self.target_env(target)}
            out = subprocess.run(
                [str(target.venv / "bin" / "python"), str(APPS / "make_session.py")],
                env=env,
                cwd=APPS,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if out.returncode:
                raise BenchError(f"make_session failed: {out.stderr.strip()[-400:]}")
            self.sessions[target.name] = out.stdout.strip().splitlines()[-1]
        return ["--header", f"Cookie: sessionid={self.sessions[target.name]}"]


PROBE = r"""
import json, importlib
caps = {}
def probe(name, fn):
    try:
        fn(); caps[name] = ""
    except Exception as e:
        caps[name] = f"{type(e).__name__}: {e}"[:200]
def ws():
    import django_ws
    django_ws.get_websocket_application; django_ws.WebSocketHandler
def dsl():
    ws(); from django_ws.decorators import ws_route
def bc():
    ws(); import django_ws; django_ws.broadcast; django_ws.broadcast_sync
def bc_redis():
    bc(); importlib.import_module("django_ws.broadcast.redis").RedisBackend
probe("djangows", ws)
probe("djangows-dsl", dsl)
probe("djangows-broadcast", bc)
probe("djangows-redis", bc_redis)
probe("channels", lambda: importlib.import_module("channels.generic.websocket"))
probe("channels-redis", lambda: importlib.import_module("channels_redis.pubsub"))
probe("starlette", lambda: importlib.import_module("starlette.endpoints"))
probe("redis", lambda: importlib.import_module("redis.asyncio"))
print(json.dumps(caps))
"""


def probe_capabilities(ctx: Context) -> None:
    caps: dict[str, str] = {}
    out = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=APPS,
    )
    try:
        caps.update(json.loads(out.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        caps = {
            k: f"probe failed: {out.stderr.strip()[-200:]}"
            for k in (
                "djangows",
                "djangows-dsl",
                "djangows-broadcast",
                "djangows-redis",
                "channels",
                "channels-redis",
                "starlette",
                "redis",
            )
        }
    if not (VENV_102 / "bin" / "python").exists():
        caps["djangows102"] = "benchmarks/.venv-102 missing (run benchmarks/setup.sh)"
    else:
        out = subprocess.run(
            [
                str(VENV_102 / "bin" / "python"),
                "-c",
                "import importlib.metadata as m; print(m.version('django-ws'))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=APPS,
        )
        caps["djangows102"] = (
            ""
            if out.stdout.strip() == "1.0.2"
            else (
                f"django-ws 1.0.2 not installed in .venv-102: {out.stdout.strip()}{out.stderr[-200:]}"
            )
        )
    redis_missing = (
        "redis-server/redis-cli not found"
        if not (shutil_which("redis-server") and shutil_which("redis-cli"))
        else ""
    )
    if redis_missing:
        for key in ("redis", "djangows-redis", "channels-redis"):
            caps[key] = redis_missing
    ctx.capabilities = caps


def shutil_which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


# --------------------------------------------------------------------------
# Scenarios


@dataclass
class Scenario:
    name: str
    title: str
    metric: str  # what the number is
    unit: str
    higher_is_better: bool
    targets: list[Target]
    run: Callable[[Context, list[Target], Recorder], None]
    method: str = ""
    needs_redis: bool = False


class Recorder:
    """Collects per-run measurements: results[variant][target] -> list of runs."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.variants: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.errors: dict[str, list[str]] = {}
        self.descriptions: dict[str, str] = {}

    def add(self, variant: str, target: Target, value: float, **extra: Any) -> None:
        self.descriptions[target.name] = target.description
        self.variants.setdefault(variant, {}).setdefault(target.name, []).append(
            {"value": value, **extra}
        )
        shown = ", ".join(
            f"{k}={v}" for k, v in extra.items() if isinstance(v, (int, float))
        )
        log(
            f"  {self.scenario.name} {variant} {target.name}: {value:,.2f} {self.scenario.unit}"
            f"  ({shown})"
        )

    def fail(self, target: Target, error: str) -> None:
        self.descriptions[target.name] = target.description
        self.errors.setdefault(target.name, []).append(error)
        log(f"  {self.scenario.name} {target.name}: FAILED {error}")


def log(message: str) -> None:
    print(message, flush=True)


def guarded(rec: Recorder, target: Target, fn: Callable[[], None]) -> None:
    try:
        fn()
    except BenchError as error:
        rec.fail(target, str(error))
    except subprocess.TimeoutExpired as error:
        rec.fail(target, f"timeout: {error}")


def measure_server_cpu(
    server: Server, fn: Callable[[], dict[str, Any]]
) -> tuple[dict[str, Any], float]:
    before = proc_cpu_s(server.pid)
    result = fn()
    server.check_alive()
    cpu = proc_cpu_s(server.pid) - before
    result["server_cpu_s"] = cpu
    return result, round(100.0 * cpu / max(result["wall_s"], 1e-9), 1)


def per_cpu_second(result: dict[str, Any]) -> float:
    """Operations per second of server CPU: robust to other load on the server core."""
    return round(result["completed_total"] / max(result["server_cpu_s"], 1e-9), 1)


def in_run_order(targets: list[Target], run: int) -> list[Target]:
    """The targets in this run's order: forward on even runs, backward on odd ones.

    The machine's speed drifts during an invocation (another tenant, clock
    changes); alternating the order puts each target early and late alike, so a
    drift does not favour the targets that happen to come first.
    """
    return list(targets) if run % 2 == 0 else list(reversed(targets))


def scenario_pingpong(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    for run in range(p.runs):
        for target in in_run_order(targets, run):

            def one() -> None:
                headers = ctx.session_headers(target)
                with Server(target, ctx) as server:
                    for conns in p.pingpong_connections:
                        args = [
                            "--mode",
                            "pingpong",
                            "--port",
                            str(server.port),
                            "--path",
                            server.path("echo"),
                            "--connections",
                            str(conns),
                            "--duration",
                            str(p.pingpong_duration),
                            "--warmup",
                            str(p.pingpong_warmup),
                            *headers,
                        ]
                        timeout = p.pingpong_duration + p.pingpong_warmup + 60
                        res, server_cpu = measure_server_cpu(
                            server, lambda: run_loadgen(args, timeout)
                        )
                        rec.add(
                            f"{conns} connection{'s' if conns > 1 else ''}",
                            target,
                            res["rate"],
                            loadgen_cpu_pct=res.get("window_cpu_pct", res["cpu_pct"]),
                            server_cpu_pct=server_cpu,
                            per_cpu_s=per_cpu_second(res),
                            errors=loadgen_errors(res),
                            p50_ms=res["latency_p50_ms"],
                            p99_ms=res["latency_p99_ms"],
                        )

            guarded(rec, target, one)


def scenario_churn(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    for run in range(p.runs):
        for target in in_run_order(targets, run):

            def one() -> None:
                headers = ctx.session_headers(target)
                with Server(target, ctx) as server:
                    args = [
                        "--mode",
                        "churn",
                        "--port",
                        str(server.port),
                        "--path",
                        server.path("echo"),
                        "--connections",
                        str(p.churn_workers),
                        "--duration",
                        str(p.churn_duration),
                        "--warmup",
                        str(p.churn_warmup),
                        *headers,
                    ]
                    timeout = p.churn_duration + p.churn_warmup + 60
                    res, server_cpu = measure_server_cpu(
                        server, lambda: run_loadgen(args, timeout)
                    )
                    rec.add(
                        f"{p.churn_workers} workers",
                        target,
                        res["rate"],
                        loadgen_cpu_pct=res.get("window_cpu_pct", res["cpu_pct"]),
                        server_cpu_pct=server_cpu,
                        per_cpu_s=per_cpu_second(res),
                        errors=loadgen_errors(res),
                        p50_ms=res["latency_p50_ms"],
                        p99_ms=res["latency_p99_ms"],
                    )

            guarded(rec, target, one)


def scenario_idle(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    for run in range(p.idle_runs):
        for count in p.idle_counts:
            for target in targets:

                def one() -> None:
                    headers = ctx.session_headers(target)
                    with Server(target, ctx) as server:
                        # Warm up: import-on-first-use code paths run before "before".
                        run_loadgen(
                            [
                                "--mode",
                                "pingpong",
                                "--port",
                                str(server.port),
                                "--path",
                                server.path("echo"),
                                "--connections",
                                "10",
                                "--duration",
                                "0.3",
                                "--warmup",
                                "0",
                                *headers,
                            ],
                            60,
                        )
                        time.sleep(p.idle_settle / 2)
                        before = proc_rss_kib(server.pid)
                        measured: dict[str, Any] = {}

                        def at_ready(event: dict[str, Any]) -> None:
                            if event["event"] != "ready":
                                return
                            if event["open"] != count:
                                raise BenchError(
                                    f"only {event['open']} of {count} opened"
                                )
                            time.sleep(p.idle_settle)
                            measured["after"] = proc_rss_kib(server.pid)
                            measured["open_s"] = event["open_s"]

                        res = run_loadgen(
                            [
                                "--mode",
                                "idle",
                                "--port",
                                str(server.port),
                                "--path",
                                server.path("echo"),
                                "--connections",
                                str(count),
                                "--duration",
                                "300",
                                *headers,
                            ],
                            timeout=300 + 60,
                            on_event=at_ready,
                        )
                        server.check_alive()
                        after = measured["after"]
                        rec.add(
                            f"{count:,} connections",
                            target,
                            (after - before) / count,
                            rss_before_kib=before,
                            rss_after_kib=after,
                            loadgen_cpu_pct=res["cpu_pct"],
                            errors=loadgen_errors(res),
                            open_s=measured["open_s"],
                        )

                guarded(rec, target, one)


def broadcast_args(
    server_ports: list[int], server: Server, members: int, p: Params
) -> list[str]:
    return [
        "--mode",
        "broadcast",
        "--ports",
        ",".join(map(str, server_ports)),
        "--path",
        server.path("room"),
        "--trigger-path",
        server.path("trigger"),
        "--connections",
        str(members),
        "--count",
        str(p.broadcast_rounds),
        "--warmup-rounds",
        str(p.broadcast_warmup_rounds),
        "--wait-stdin",
        # channels_redis refuses some of 200 concurrent handshakes (redis-py's
        # MaxConnectionsError), so members connect at most 50 at a time.
        "--inflight",
        "50",
    ]


def scenario_broadcast(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    for run in range(p.broadcast_runs):
        for target in in_run_order(targets, run):

            def one() -> None:
                with Server(target, ctx) as server:
                    for members in p.broadcast_members:
                        args = broadcast_args([server.port], server, members, p)
                        res, server_cpu = measure_server_cpu(
                            server, lambda: run_loadgen(args, 120)
                        )
                        rec.add(
                            f"{members:,} members",
                            target,
                            res["median_ms"],
                            first_ms=round(statistics.median(res["first_ms"]), 3),
                            max_ms=res["max_ms"],
                            missed=res["missed"],
                            loadgen_cpu_pct=res["cpu_pct"],
                            errors=loadgen_errors(res),
                        )

            guarded(rec, target, one)


def scenario_broadcast_redis(
    ctx: Context, targets: list[Target], rec: Recorder
) -> None:
    p = ctx.params
    redis = ctx.redis
    assert redis is not None
    members = 2 * p.redis_members_per_server
    rounds = p.broadcast_rounds + p.broadcast_warmup_rounds
    for run in range(p.broadcast_runs):
        for target in in_run_order(targets, run):

            def one() -> None:
                redis.cli("FLUSHALL")  # no group members left over from earlier runs
                with Server(target, ctx) as a, Server(target, ctx) as b:
                    stats: dict[str, dict[str, int]] = {}

                    def at_event(event: dict[str, Any]) -> None:
                        # count from all members joined to all broadcasts done
                        if event["event"] == "ready":
                            redis.cli("CONFIG", "RESETSTAT")
                        elif event["event"] == "done":
                            stats["after"] = redis.commandstats()

                    args = broadcast_args([a.port, b.port], a, members, p)
                    res = run_loadgen(args, 180, on_event=at_event)
                    a.check_alive()
                    b.check_alive()
                commands = {
                    k: v
                    for k, v in stats["after"].items()
                    if k.split("|")[0] not in ("config", "info")
                }
                rec.add(
                    f"2 processes x {p.redis_members_per_server:,} members",
                    target,
                    res["median_ms"],
                    first_ms=round(statistics.median(res["first_ms"]), 3),
                    max_ms=res["max_ms"],
                    missed=res["missed"],
                    loadgen_cpu_pct=res["cpu_pct"],
                    errors=loadgen_errors(res),
                    publish_per_broadcast=round(commands.get("publish", 0) / rounds, 2),
                    commands_per_broadcast=round(sum(commands.values()) / rounds, 2),
                    commands={
                        k: round(v / rounds, 2) for k, v in sorted(commands.items())
                    },
                )

            guarded(rec, target, one)


def scenario_sync(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    for run in range(p.runs):
        for target in in_run_order(targets, run):

            def one() -> None:
                if ctx.redis is not None:
                    ctx.redis.cli("FLUSHALL")
                env = {**os.environ, **dict(target.env), **ctx.target_env(target)}
                out = subprocess.run(
                    [
                        "taskset",
                        "-c",
                        SERVER_CPU,
                        str(target.venv / "bin" / "python"),
                        str(HERE / "sync_broadcast.py"),
                        "--kind",
                        target.sync_kind,
                        "--calls",
                        str(p.sync_calls),
                        "--warmup",
                        str(p.sync_warmup),
                        "--max-seconds",
                        "30",
                    ],
                    env=env,
                    cwd=APPS,
                    capture_output=True,
                    text=True,
                    timeout=180,
                    check=False,
                )
                if out.returncode:
                    raise BenchError(out.stderr.strip()[-400:])
                res = json.loads(out.stdout.strip().splitlines()[-1])
                rec.add(
                    "from sync code",
                    target,
                    res["us_per_call"],
                    calls=res["calls"],
                    calls_per_s=res["calls_per_s"],
                )

            guarded(rec, target, one)


SCENARIOS = {
    s.name: s
    for s in [
        Scenario(
            "pingpong",
            "Ping-pong",
            "round trips/s",
            "round trips/s",
            True,
            ALL_SERVER_TARGETS,
            scenario_pingpong,
            'Each connection sends `{"type": "echo", "n": i, "payload": "x" * 100}`, '
            "waits for the echo (the loadgen checks `n` and the payload), and repeats; round "
            "trips are counted in a 5 s window after 1 s of warm-up, all connections open "
            "before the clock starts.",
        ),
        Scenario(
            "churn",
            "Connection churn",
            "connections/s",
            "connections/s",
            True,
            CHURN_TARGETS,
            scenario_churn,
            "Each worker repeatedly opens a connection (TCP + WebSocket handshake), sends one "
            "echo message, reads the echo, and closes with a clean close handshake (the "
            "server closes TCP first, as RFC 6455 says); full cycles completed in a 5 s window "
            "after 1 s of warm-up. The `-auth` targets run the session/auth middleware for "
            "clients without a session cookie; the `-login` targets send a logged-in "
            "session cookie, so the session and the user are loaded from the database on "
            "every connection (the default `CONN_MAX_AGE = 0`, SQLite), and their `× ref` "
            "divides by `channels-login`.",
        ),
        Scenario(
            "idle",
            "Idle memory per connection",
            "KiB per connection",
            "KiB/conn",
            False,
            ALL_SERVER_TARGETS,
            scenario_idle,
            "A fresh server is warmed up (10 connections ping-pong for 0.3 s), its VmRSS read "
            "from /proc, then N idle connections are opened (handshake only) and VmRSS is read "
            "again after a 3 s settle; the difference divided by N.",
        ),
        Scenario(
            "broadcast",
            "Broadcast in one process",
            "ms from trigger to last receipt",
            "ms",
            False,
            [RAW, STARLETTE, CHANNELS, DJANGOWS, DJANGOWS_DSL, DJANGOWS_102],
            scenario_broadcast,
            "N members connect to `/room` (joining the group) and one trigger connection to "
            "`/trigger`; every member answers one echo first so all joins are complete. Each "
            'round the trigger sends `{"type": "broadcast", "seq": k, ...}` and the server '
            "sends that ~100-byte JSON to the group; the loadgen takes the time (monotonic "
            "clock) from the trigger's send to the moment the last member has it. The value "
            "per run is the median over 15 rounds (after 3 warm-up rounds); the table shows "
            "the median of 5 runs. Starlette and django-ws 1.0.2 have no groups: their apps "
            "keep a set of members by hand.",
        ),
        Scenario(
            "broadcast-redis",
            "Broadcast across 2 processes through Redis",
            "ms from trigger to last receipt",
            "ms",
            False,
            [
                RAW_REDIS,
                DJANGOWS_REDIS,
                DJANGOWS_DSL_REDIS,
                CHANNELS_REDIS,
                CHANNELS_PUBSUB,
            ],
            scenario_broadcast_redis,
            "Two uvicorn processes, both pinned to core 0 (with 2 cores the load generator "
            "keeps core 1; the private redis-server started by the runner shares core 1 with "
            "it), 500 members on each; the trigger is on the first process and the time is "
            "taken until the last member on either process has the message. Redis commands "
            "are counted with `CONFIG RESETSTAT` once all members are connected and "
            "`INFO commandstats` right after the last broadcast (before anyone leaves), "
            "divided by the number of broadcasts (warm-up rounds included); `config`/`info` "
            "themselves are left out, the receive loops' commands (channels_redis' "
            "BZPOPMIN) count. Members connect at most 50 at a time: with 200 concurrent "
            "handshakes channels_redis refuses some (redis-py's MaxConnectionsError).",
            needs_redis=True,
        ),
        Scenario(
            "sync-broadcast",
            "broadcast_sync from sync code",
            "µs per call",
            "µs/call",
            False,
            SYNC_TARGETS,
            scenario_sync,
            "A plain Python process (Django settings configured, no event loop running, "
            "pinned to core 0) calls the sync API in a timed loop after a warm-up: "
            '`django_ws.broadcast_sync("room", data)` or Channels\' '
            '`async_to_sync(channel_layer.group_send)("room", event)`; the raw floor is '
            "redis-py's sync `publish`. Nobody is a member of the group in that process, so "
            "this is the caller's cost, not the delivery's.",
            needs_redis=True,
        ),
    ]
}


# --------------------------------------------------------------------------
# Reporting


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    values = [r["value"] for r in runs]
    out: dict[str, Any] = {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": len(values),
    }
    for key in (
        "loadgen_cpu_pct",
        "server_cpu_pct",
        "rss_after_kib",
        "publish_per_broadcast",
        "commands_per_broadcast",
        "first_ms",
        "p50_ms",
        "p99_ms",
        "calls_per_s",
        "open_s",
        "per_cpu_s",
    ):
        found = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
        if found:
            out[key] = statistics.median(found)
    out["errors"] = sum(int(r.get("errors", 0)) for r in runs)
    out["missed"] = sum(int(r.get("missed", 0)) for r in runs)
    commands = [r["commands"] for r in runs if r.get("commands")]
    if commands:
        names = sorted({k for c in commands for k in c})
        out["commands"] = {
            n: statistics.median(c.get(n, 0) for c in commands) for n in names
        }
    return out


def reference_name(names: list[str]) -> str | None:
    for candidate in ("channels-auth", "channels", "channels-redis", "channels-memory"):
        if candidate in names:
            return candidate
    return None


def raw_name(names: list[str]) -> str | None:
    for candidate in ("raw", "raw-redis"):
        if candidate in names:
            return candidate
    return None


def fmt(value: float, unit: str) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(value: float, base: float | None) -> str:
    if not base:
        return "–"
    return f"{value / base:.2f}×"


def scenario_markdown(name: str, data: dict[str, Any]) -> list[str]:
    scenario = SCENARIOS[name]
    better = "higher is better" if scenario.higher_is_better else "lower is better"
    meta = data.get("meta")
    lines = [f"## {scenario.title}", "", scenario.method, ""]
    if meta:
        lines.append(
            f"Measured {meta['date']} at `{meta['git']}` with `{meta['command']}`; "
            f"load average {meta.get('loadavg_before', '?')} before, "
            f"{meta.get('loadavg_after', '?')} after"
            + (
                f"; CPU probe {meta['cpu_probe_ms_before']} ms before, "
                f"{meta['cpu_probe_ms_after']} ms after (a fixed Python loop)"
                if "cpu_probe_ms_after" in meta
                else ""
            )
            + (
                f"; loopback probe {meta['loopback_probe_us_before']} µs before, "
                f"{meta['loopback_probe_us_after']} µs after (a 1-byte TCP send and "
                "receive)"
                if "loopback_probe_us_after" in meta
                else ""
            )
            + ". Higher probes mean a slower machine."
        )
        lines.append("")
    lines.append(
        f"Median of {data['runs_label']}; {scenario.metric}, {better}. "
        "`× raw` and `× ref` divide by the raw app's and by the Channels reference's "
        "number from the same invocation."
    )
    if name in ("pingpong", "churn"):
        lines.append(
            "*per server CPU-s* divides everything the server completed by the CPU "
            "seconds it used (from /proc): unlike the rate, it does not drop when other "
            "work shares core 0 (then *server CPU* stays well under 100% at 50 "
            "connections)."
        )
    lines.append("")
    for variant, targets in data["variants"].items():
        summaries = {t: summarize(runs) for t, runs in targets.items()}
        names = list(summaries)
        base = raw_name(names)
        ref = reference_name(names)
        lines.append(f"**{variant}** (ref = `{ref or 'none'}`)")
        lines.append("")
        extra_cols = []
        if name in ("pingpong", "churn"):
            raw_cpu = summaries[base].get("per_cpu_s") if base else None
            extra_cols = [
                ("per server CPU-s", lambda s: fmt(s.get("per_cpu_s", 0), "")),
                ("× raw per CPU-s", lambda s: ratio(s.get("per_cpu_s", 0), raw_cpu)),
                (
                    "p50 / p99 ms",
                    lambda s: f"{s.get('p50_ms', 0):.2f} / "
                    f"{s.get('p99_ms', 0):.2f}",
                ),
                ("server CPU", lambda s: f"{s.get('server_cpu_pct', 0):.0f}%"),
                ("loadgen CPU", lambda s: f"{s.get('loadgen_cpu_pct', 0):.0f}%"),
            ]
        elif name == "idle":
            extra_cols = [
                ("RSS at N", lambda s: f"{s.get('rss_after_kib', 0) / 1024:,.0f} MiB"),
                ("time to open N", lambda s: f"{s.get('open_s', 0):.1f} s"),
                ("loadgen CPU", lambda s: f"{s.get('loadgen_cpu_pct', 0):.0f}%"),
            ]
        elif name == "broadcast":
            extra_cols = [
                ("first receipt ms", lambda s: f"{s.get('first_ms', 0):.2f}"),
                ("loadgen CPU", lambda s: f"{s.get('loadgen_cpu_pct', 0):.0f}%"),
            ]
        elif name == "broadcast-redis":
            extra_cols = [
                (
                    "PUBLISH / broadcast",
                    lambda s: f"{s.get('publish_per_broadcast', 0):g}",
                ),
                (
                    "Redis commands / broadcast",
                    lambda s: f"{s.get('commands_per_broadcast', 0):g}",
                ),
                ("loadgen CPU", lambda s: f"{s.get('loadgen_cpu_pct', 0):.0f}%"),
            ]
        elif name == "sync-broadcast":
            extra_cols = [("calls/s", lambda s: f"{s.get('calls_per_s', 0):,.0f}")]
        header = [
            "target",
            scenario.unit,
            "× raw",
            "× ref",
            "min–max",
            *[c for c, _ in extra_cols],
            "errors",
        ]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for target, s in summaries.items():
            # Logged-in rows compare with Channels logged in, when it was measured.
            row_ref = "channels-login" if target.endswith("-login") else ref
            if row_ref not in summaries:
                row_ref = ref
            row = [
                f"`{target}`",
                fmt(s["median"], scenario.unit),
                ratio(s["median"], summaries[base]["median"] if base else None),
                ratio(s["median"], summaries[row_ref]["median"] if row_ref else None),
                f"{fmt(s['min'], '')}–{fmt(s['max'], '')}",
                *[f(s) for _, f in extra_cols],
                str(s["errors"] + s["missed"]),
            ]
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if name == "broadcast-redis":
        lines.append("Redis commands per broadcast, by command (median over runs):")
        lines.append("")
        for variant, targets in data["variants"].items():
            for target, runs in targets.items():
                s = summarize(runs)
                cmds = ", ".join(f"{k} {v:g}" for k, v in s.get("commands", {}).items())
                lines.append(f"- `{target}`: {cmds or 'none'}")
        lines.append("")
    if data.get("errors"):
        lines.append("Failures:")
        lines.append("")
        for target, errors in data["errors"].items():
            lines.append(f"- `{target}`: {errors[-1][:300]}")
        lines.append("")
    if data.get("skipped"):
        lines.append(
            "Not run: "
            + "; ".join(f"`{t}` ({why})" for t, why in data["skipped"].items())
        )
        lines.append("")
    lines.append(
        "Targets: " + "; ".join(f"`{t}` {d}" for t, d in data["descriptions"].items())
    )
    lines.append("")
    lines.append(f"![{scenario.title}](img/bench-{name}.png)")
    lines.append("")
    return lines


def chart(name: str, data: dict[str, Any], path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        log(
            f"matplotlib is not installed: no chart for {name} (run benchmarks/setup.sh)"
        )
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenario = SCENARIOS[name]
    variants = list(data["variants"].items())
    if not variants:
        return
    better = "higher" if scenario.higher_is_better else "lower"
    rows = [("median", f"{scenario.unit} ({better} is better)")]
    if name in ("pingpong", "churn"):
        rows.append(("per_cpu_s", "per server CPU-second (higher is better)"))
    fig, axes = plt.subplots(
        len(rows),
        len(variants),
        figsize=(5.2 * len(variants), 3.4 * len(rows)),
        squeeze=False,
    )
    for row, (key, label) in enumerate(rows):
        for ax, (variant, targets) in zip(axes[row], variants):
            names = list(targets)
            values = [summarize(targets[t]).get(key, 0.0) for t in names]
            colors = [
                (
                    "#2e7d32"
                    if t.startswith("djangows") and t != "djangows102"
                    else "#9e9e9e" if t.startswith("raw") else "#1565c0"
                )
                for t in names
            ]
            bars = ax.barh(names[::-1], values[::-1], color=colors[::-1])
            for bar, value in zip(bars, values[::-1]):
                ax.text(
                    bar.get_width(),
                    bar.get_y() + bar.get_height() / 2,
                    " " + fmt(value, ""),
                    va="center",
                    fontsize=8,
                )
            ax.set_title(variant, fontsize=10)
            ax.set_xlabel(label, fontsize=8)
            ax.tick_params(labelsize=8)
            top = max(values) if values else 0
            ax.set_xlim(0, top * 1.25 if top > 0 else 1)
    fig.suptitle(scenario.title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def versions() -> dict[str, dict[str, str]]:
    code = (
        "import json, importlib.metadata as m\n"
        "out = {}\n"
        "for n in ['django-ws', 'Django', 'asgiref', 'channels', 'channels-redis', 'starlette',"
        " 'uvicorn', 'uvloop', 'httptools', 'websockets', 'redis', 'matplotlib']:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    result = {}
    for label, venv in (("benchmarks/.venv", VENV), ("benchmarks/.venv-102", VENV_102)):
        python = venv / "bin" / "python"
        if python.exists():
            # cwd=APPS: the repo root would shadow 1.0.2 with this checkout's metadata
            out = subprocess.run(
                [str(python), "-c", code],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
                cwd=APPS,
            )
            with contextlib.suppress(ValueError, IndexError):
                result[label] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def machine() -> dict[str, str]:
    def run(*cmd: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            return subprocess.run(
                cmd, capture_output=True, text=True, timeout=10, check=False
            ).stdout.strip()
        return ""

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in run("lscpu").splitlines()
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
    return {
        "cpu": model,
        "nproc": run("nproc"),
        "memory": f"{mem_kib / 1024 / 1024:.0f} GiB",
        "kernel": platform.release(),
        "os": (
            f"Debian {debian.read_text().strip()}"
            if debian.exists()
            else platform.platform()
        ),
        "python": platform.python_version(),
        "gcc": (
            run("gcc", "--version").splitlines()[0] if run("gcc", "--version") else ""
        ),
        "redis-server": run("redis-server", "--version"),
    }


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


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


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


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


def git_revision() -> str:
    out = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return out.stdout.strip() or "unknown"


# The performance issue's targets: (scenario, variant, target, compared with, kind,
# bound, wording). kind "ratio": target / other must be >= bound for higher-is-better
# scenarios and <= bound otherwise; "faster": other / target >= bound (times);
# "plus": target <= other + bound (KiB); "max": target's rss_after_kib <= bound (KiB);
# "publish": target's PUBLISH per broadcast == bound; "info": a ratio shown beside
# the targets, with no bound in the issue; "linear": target's median in this
# variant over its median in the variant named by ``other`` <= bound.
TARGETS: list[tuple[str, str, str, str, str, float, str]] = [
    ("pingpong", "50 connections", "djangows", "raw", "ratio", 0.95, ">= 0.95x the raw floor"),
    ("pingpong", "50 connections", "djangows", "channels-auth", "ratio", 3.5, ">= 3.5x Channels+auth"),
    ("pingpong", "50 connections", "djangows", "djangows102", "ratio", 1.0, "never below 1.0.2"),
    ("pingpong", "1 connection", "djangows", "raw", "ratio", 0.95, ">= 0.95x the raw floor"),
    ("churn", "20 workers", "djangows-auth", "raw", "ratio", 0.9, "with auth middleware >= 0.9x the raw floor"),
    ("churn", "20 workers", "djangows-auth", "channels-auth", "ratio", 2.5, "with auth middleware >= 2.5x Channels+auth"),
    ("churn", "20 workers", "djangows-login", "channels-login", "info", 0, "logged in, against Channels+auth logged in"),
    ("idle", "2,000 connections", "djangows", "raw", "plus", 2.0, "<= floor + 2 KiB"),
    ("idle", "10,000 connections", "djangows", "raw", "plus", 2.0, "<= floor + 2 KiB"),
    ("idle", "10,000 connections", "djangows", "", "max", 300 * 1024, "under 300 MiB at 10,000"),
    ("broadcast", "1,000 members", "djangows", "raw", "ratio", 1.3, "<= 1.3x the floor's time"),
    ("broadcast", "2,000 members", "djangows", "raw", "ratio", 1.3, "<= 1.3x the floor's time"),
    ("broadcast", "2,000 members", "djangows", "1,000 members", "linear", 2.3, "linear in members: time at 2,000 / time at 1,000 <= 2.3 (2.0 is linear, 4.0 quadratic)"),
    ("broadcast", "1,000 members", "djangows", "channels", "faster", 25, ">= 25x faster than Channels in-memory"),
    ("broadcast-redis", "2 processes x 500 members", "djangows", "raw", "ratio", 1.5, "<= 1.5x the floor's time"),
    ("broadcast-redis", "2 processes x 500 members", "djangows", "channels-redis", "faster", 10, ">= 10x faster than RedisChannelLayer"),
    ("broadcast-redis", "2 processes x 500 members", "djangows", "channels-pubsub", "faster", 10, ">= 10x faster than RedisPubSubChannelLayer"),
    ("broadcast-redis", "2 processes x 500 members", "djangows", "", "publish", 1, "exactly 1 PUBLISH per broadcast"),
]


def check_target(
    scenario: str,
    data: dict[str, Any],
    variants: dict[str, Any],
    target: str,
    other: str,
    kind: str,
    bound: float,
) -> tuple[str, str] | None:
    """What one row of TARGETS measured and whether it is met; ``None`` if not run."""
    if kind == "linear":
        smaller = variants.get(other, {})
        if target not in data or target not in smaller:
            return None
        growth = {
            name: summarize(data[name])["median"] / summarize(smaller[name])["median"]
            for name in data
            if name in smaller
        }
        context = ", ".join(
            f"`{name}` {growth[name]:.2f}" for name in ("raw", "channels") if name in growth
        )
        shown = f"{growth[target]:.2f}" + (f" ({context})" if context else "")
        return shown, "met" if growth[target] <= bound else "**not met**"
    if target not in data or (other and other not in data):
        return None
    mine = summarize(data[target])
    theirs = summarize(data[other])["median"] if other else None
    if kind == "info":
        return f"{mine['median'] / theirs:.2f}x `{other}`", "not a target"
    if kind == "ratio":
        value = mine["median"] / theirs
        met = value >= bound if SCENARIOS[scenario].higher_is_better else value <= bound
        shown = f"{value:.2f}x `{other}`"
    elif kind == "faster":
        value = theirs / mine["median"]
        met = value >= bound
        floor = summarize(data["raw"])["median"] if "raw" in data else None
        shown = f"{value:.1f}x faster than `{other}`" + (
            f" (the raw floor: {theirs / floor:.1f}x)" if floor else ""
        )
    elif kind == "plus":
        value = mine["median"] - theirs
        met = value <= bound
        shown = f"+{value:.1f} KiB over `{other}`"
    elif kind == "max":
        value = mine.get("rss_after_kib", 0)
        met = value <= bound
        shown = f"{value / 1024:,.0f} MiB"
    else:  # publish
        value = mine.get("publish_per_broadcast", 0)
        met = value == bound
        shown = f"{value:g} PUBLISH per broadcast"
    return shown, "met" if met else "**not met**"


def targets_markdown(results: dict[str, Any]) -> list[str]:
    """The issue's targets, checked against the medians above (same invocation)."""
    rows = []
    for scenario, variant, target, other, kind, bound, wording in TARGETS:
        variants = results["scenarios"].get(scenario, {}).get("variants", {})
        data = variants.get(variant, {})
        checked = check_target(scenario, data, variants, target, other, kind, bound)
        if checked is not None:
            shown, status = checked
            rows.append(f"| {scenario}, {variant} | `{target}` {wording} | {shown} | {status} |")
    if not rows:
        return []
    return [
        "## Targets",
        "",
        "The performance issue's targets, computed from the medians below (each ratio "
        "within one invocation). The churn targets are read with the auth middleware on "
        "and clients without a session cookie: with a logged-in session every handshake "
        "reads the session and the user from the database, which alone costs more than a whole raw connection, so "
        "no implementation could be within 0.9x of the floor there. The logged-in row is "
        "shown for what it costs, not checked.",
        "",
        "| scenario | target | measured | |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def write_report(results: dict[str, Any], md_path: Path, img_dir: Path) -> None:
    meta = results["meta"]
    lines = [
        "# Benchmarks",
        "",
        "django-ws against a bare ASGI app (the floor), Channels 4, Starlette and django-ws "
        "1.0.2, all served by the same uvicorn. Written by `benchmarks/run.py`; do not edit "
        "by hand.",
        "",
    ]
    if meta.get("smoke"):
        lines += [
            "> **Smoke run**: tiny counts and durations, numbers meaningless.",
            "",
        ]
    if meta.get("note"):
        lines += [f"> {meta['note']}", ""]
    lines += [
        "## How it is measured",
        "",
        "- One uvicorn worker per target (`--http httptools --loop uvloop --ws "
        "websockets-sansio`, access log off), pinned to core 0 with `taskset -c 0`.",
        "- The load generator is C (`benchmarks/loadgen/loadgen.c`: single-threaded epoll, "
        "RFC 6455 client, masked text frames), pinned to core 1; it reports its own CPU time "
        "(`getrusage`), shown as *loadgen CPU* (100% would mean it is the bottleneck). "
        "*server CPU* is the server process's CPU time (from /proc) over the loadgen's wall "
        "time, warm-up included.",
        "- JSON over text frames everywhere. Targets run interleaved (run 1 of every "
        "target, then run 2, ...), in alternating order (forward, then backward) so that a "
        "drift in the machine's speed does not favour whichever target comes first; medians "
        "of 5 runs (idle memory: 3). Ratios are between numbers of the same invocation.",
        "- Traffic stays on 127.0.0.1. The loadgen's framing is checked by "
        "`benchmarks/loadgen/selftest.py` before every invocation, and every echo is checked "
        "(`errors` counts connect/handshake/protocol errors, wrong echoes, unexpected closes "
        "and missed broadcast receipts).",
        "",
        "Reproduce:",
        "",
        "```sh",
        "bash benchmarks/setup.sh",
        "benchmarks/.venv/bin/python benchmarks/run.py --scenario all",
        "```",
        "",
        "Each section below names the command, commit and time it was measured with "
        "(`--scenario NAME` re-runs one section; the others are kept from "
        "`benchmarks/results.json`).",
        "",
    ]
    lines += targets_markdown(results)
    for name in SCENARIOS:
        if name in results["scenarios"]:
            lines += scenario_markdown(name, results["scenarios"][name])
            chart(name, results["scenarios"][name], img_dir / f"bench-{name}.png")
    lines += ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in meta["machine"].items()]
    lines += ["", "## Versions", ""]
    for venv, pkgs in meta["versions"].items():
        lines.append(f"`{venv}`: " + ", ".join(f"{k} {v}" for k, v in pkgs.items()))
        lines.append("")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(lines).rstrip() + "\n")


# --------------------------------------------------------------------------
# Main


def build_loadgen() -> None:
    if LOADGEN.exists() and LOADGEN.stat().st_mtime >= LOADGEN_SRC.stat().st_mtime:
        return
    log(f"building {LOADGEN.relative_to(REPO)}")
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-Wextra", "-o", str(LOADGEN), str(LOADGEN_SRC)],
        check=True,
        timeout=120,
    )


def selftest() -> None:
    out = subprocess.run(
        [sys.executable, str(SELFTEST), str(LOADGEN)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode:
        raise SystemExit(f"loadgen selftest failed:\n{out.stdout}{out.stderr}")
    log("loadgen selftest: ok")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scenario",
        default="all",
        help=f"all, or a comma list of: {', '.join(SCENARIOS)}",
    )
    parser.add_argument(
        "--targets",
        default="all",
        help=f"all, or a comma list of: {', '.join(TARGET_NAMES)}",
    )
    parser.add_argument(
        "--runs", type=int, help="runs per target (default 5; idle 3)"
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny counts and durations (CI); never writes into docs/",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="directory for benchmarks.md, img/ and benchmarks.json "
        "(default: docs/, results in benchmarks/results.json)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite benchmarks.md and the charts from the stored results; run nothing",
    )
    parser.add_argument(
        "--note", default="", help="a line to show at the top of the report"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks
    scenario_names = (
        list(SCENARIOS) if args.scenario == "all" else args.scenario.split(",")
    )
    for name in scenario_names:
        if name not in SCENARIOS:
            raise SystemExit(
                f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}"
            )
    wanted = None if args.targets == "all" else set(args.targets.split(","))
    if wanted:
        unknown = wanted - set(TARGET_NAMES) - {"raw-redis"}
        if unknown:
            raise SystemExit(
                f"unknown targets {sorted(unknown)}; choose from {TARGET_NAMES}"
            )

    params = SMOKE if args.smoke else Params()
    if args.runs:
        params.runs = params.idle_runs = args.runs
        params.broadcast_runs = max(
            args.runs, params.broadcast_runs if not args.smoke else 1
        )
    if args.out:
        out_dir = args.out
        md_path, img_dir, json_path = (
            out_dir / "benchmarks.md",
            out_dir / "img",
            out_dir / "benchmarks.json",
        )
    elif args.smoke:
        out_dir = HERE / "results" / "smoke"
        md_path, img_dir, json_path = (
            out_dir / "benchmarks.md",
            out_dir / "img",
            out_dir / "benchmarks.json",
        )
    else:
        md_path, img_dir, json_path = (
            REPO / "docs" / "benchmarks.md",
            REPO / "docs" / "img",
            HERE / "results.json",
        )

    if args.report_only:
        results = json.loads(json_path.read_text())
        write_report(results, md_path, img_dir)
        log(f"wrote {md_path} and {img_dir}/bench-*.png from {json_path}")
        return 0
    if not (VENV / "bin" / "python").exists():
        raise SystemExit(f"{VENV} is missing: run `bash benchmarks/setup.sh` first")
    build_loadgen()
    selftest()
    results: dict[str, Any] = {"scenarios": {}}
    if json_path.exists():
        with contextlib.suppress(ValueError):
            results = json.loads(json_path.read_text())
            if bool(results.get("meta", {}).get("smoke")) != args.smoke:
                results = {"scenarios": {}}  # never mix smoke and real numbers
    command = "benchmarks/.venv/bin/python benchmarks/run.py " + shlex.join(
        sys.argv[1:] if argv is None else argv
    )
    results["meta"] = {
        "date": now_utc(),
        "git": git_revision(),
        "smoke": args.smoke,
        "command": command.strip(),
        "machine": machine(),
        "versions": versions(),
        "note": args.note,
        "loadavg_before": loadavg(),
    }
    failed = False
    with tempfile.TemporaryDirectory(prefix="django-ws-bench-") as tmp:
        ctx = Context(params=params, workdir=Path(tmp), smoke=args.smoke)
        probe_capabilities(ctx)
        needs_redis = any(SCENARIOS[n].needs_redis for n in scenario_names)
        with contextlib.ExitStack() as stack:
            if needs_redis and not ctx.capabilities.get("redis"):
                try:
                    ctx.redis = stack.enter_context(RedisServer(ctx.workdir))
                except BenchError as error:
                    for key in ("redis", "djangows-redis", "channels-redis"):
                        ctx.capabilities[key] = str(error)
            for name in scenario_names:
                scenario = SCENARIOS[name]
                rec = Recorder(scenario)
                skipped: dict[str, str] = {}
                targets = []
                for target in scenario.targets:
                    if (
                        wanted is not None
                        and target.selector not in wanted
                        and target.name not in wanted
                    ):
                        continue
                    why = ctx.available(target)
                    if why:
                        skipped[target.name] = why
                    else:
                        targets.append(target)
                log(
                    f"== {name}: {', '.join(t.name for t in targets) or 'nothing to run'}"
                )
                started = {
                    "date": now_utc(),
                    "git": results["meta"]["git"],
                    "command": results["meta"]["command"],
                    "loadavg_before": loadavg(),
                    "cpu_probe_ms_before": cpu_probe_ms(),
                    "loopback_probe_us_before": loopback_probe_us(),
                }
                if targets:
                    scenario.run(ctx, targets, rec)
                for target_runs in rec.variants.values():
                    for runs in target_runs.values():
                        failed |= any(r.get("errors") or r.get("missed") for r in runs)
                failed |= bool(rec.errors)
                runs = (
                    params.broadcast_runs
                    if name.startswith("broadcast")
                    else params.idle_runs
                    if name == "idle"
                    else params.runs
                )
                results["scenarios"][name] = {
                    "meta": {
                        **started,
                        "loadavg_after": loadavg(),
                        "cpu_probe_ms_after": cpu_probe_ms(),
                        "loopback_probe_us_after": loopback_probe_us(),
                    },
                    "variants": rec.variants,
                    "errors": rec.errors,
                    "skipped": skipped,
                    "descriptions": rec.descriptions,
                    "runs_label": f"{runs} run{'s' if runs > 1 else ''}",
                }
    results["meta"]["loadavg_after"] = loadavg()
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    write_report(results, md_path, img_dir)
    log(f"wrote {md_path} and {img_dir}/bench-*.png")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
