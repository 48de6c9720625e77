"""What the benchmark venvs can run: one capability name per optional package."""

from __future__ import annotations

import json
import shutil

from .common import APPS, VENV, VENV_102, capture
from .postgres import MISSING, NEEDS_POSTGRES_SERVER, postgres_bin

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
def history():
    bc(); importlib.import_module("django_ws.broadcast.history").HistoryStore
def live():
    bc(); importlib.import_module("django_ws.live").broadcast_fragment
def bc_redis():
    bc(); importlib.import_module("django_ws.broadcast.redis").RedisBackend
def bc_postgres():
    bc(); importlib.import_module("django_ws.broadcast.postgres").PostgresBackend
    importlib.import_module("psycopg")
probe("djangows", ws)
probe("djangows-dsl", dsl)
probe("djangows-broadcast", bc)
probe("djangows-history", history)
probe("djangows-redis", bc_redis)
probe("djangows-live", live)
probe("djangows-postgres", bc_postgres)
probe("psycopg", lambda: importlib.import_module("psycopg"))
probe("channels", lambda: importlib.import_module("channels.generic.websocket"))
probe("channels-redis", lambda: importlib.import_module("channels_redis.pubsub"))
probe("starlette", lambda: importlib.import_module("starlette.endpoints"))
probe("redis", lambda: importlib.import_module("redis.asyncio"))
probe("socketio", lambda: importlib.import_module("socketio").AsyncServer)
def sio_redis():
    importlib.import_module("socketio").AsyncRedisManager
    importlib.import_module("redis.asyncio")
probe("socketio-redis", sio_redis)
print(json.dumps(caps))
"""
PROBED = (
    "djangows",
    "djangows-dsl",
    "djangows-broadcast",
    "djangows-history",
    "djangows-redis",
    "djangows-live",
    "djangows-postgres",
    "psycopg",
    "channels",
    "channels-redis",
    "starlette",
    "redis",
    "socketio",
    "socketio-redis",
)
NEEDS_REDIS_SERVER = ("redis", "djangows-redis", "channels-redis", "socketio-redis")


def probe_capabilities() -> dict[str, str]:
    """Map each capability to "" if it is available, else to why not."""
    caps: dict[str, str] = {}
    out = capture([str(VENV / "bin" / "python"), "-c", PROBE], 120, cwd=APPS)
    try:
        caps.update(json.loads(out.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        caps = {k: f"probe failed: {out.stderr.strip()[-200:]}" for k in PROBED}
    if not (VENV_102 / "bin" / "python").exists():
        caps["djangows102"] = "benchmarks/.venv-102 missing (run benchmarks/setup.sh)"
    else:
        # cwd=APPS: the repo root would shadow 1.0.2 with this checkout's metadata
        code = "import importlib.metadata as m; print(m.version('django-ws'))"
        out = capture([str(VENV_102 / "bin" / "python"), "-c", code], 60, cwd=APPS)
        caps["djangows102"] = (
            ""
            if out.stdout.strip() == "1.0.2"
            else "django-ws 1.0.2 not installed in .venv-102: "
            f"{out.stdout.strip()}{out.stderr[-200:]}"
        )
    if not (shutil.which("redis-server") and shutil.which("redis-cli")):
        for key in NEEDS_REDIS_SERVER:
            caps[key] = "redis-server/redis-cli not found"
    if postgres_bin() is None:
        for key in NEEDS_POSTGRES_SERVER:
            caps[key] = MISSING
    return caps
