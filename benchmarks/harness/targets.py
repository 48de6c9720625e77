"""The implementations under test: ASGI apps that uvicorn serves, and sync callers.

A target named ``-auth`` or ``-login`` is its base target with another
environment; ``dataclasses.replace`` says exactly what differs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .common import VENV, VENV_102


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
    needs: str = ""  # capability that must be available (see capabilities.py)
    base: str = ""  # the --targets name that selects this row
    sync_kind: str = ""  # sync-broadcast scenario: raw, djangows or channels
    path_template: str = ""  # the URL of a route, when not prefix + /name
    loadgen_args: tuple[str, ...] = ()  # what the loadgen needs to speak the app's protocol

    @property
    def selector(self) -> str:
        return self.base or self.name

    @property
    def settings_module(self) -> str | None:
        return dict(self.env).get("DJANGO_SETTINGS_MODULE")

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def path(self, name: str) -> str:
        """The URL path of the app's ``/echo``, ``/room`` or ``/trigger`` route."""
        if self.path_template:
            return self.path_template.format(name=name)
        return f"{self.prefix}/{name}"


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
CHANNELS_AUTH = replace(
    CHANNELS,
    name="channels-auth",
    description="the same behind AuthMiddlewareStack, no session cookie (anonymous)",
    env=_dj("channels_project.settings", BENCH_AUTH="1", BENCH_LAYER="memory"),
)
CHANNELS_LOGIN = replace(
    CHANNELS_AUTH,
    name="channels-login",
    description="the same behind AuthMiddlewareStack, logged-in session cookie",
    session=True,
)
DJANGOWS = Target(
    "djangows",
    "django-ws WebSocketHandler subclass, MemoryBackend",
    "djangows_project.asgi:application",
    lifespan="on",
    env=_dj("djangows_project.settings", BENCH_AUTH="0", BENCH_BROADCAST="memory"),
    needs="djangows",
)
DJANGOWS_AUTH = replace(
    DJANGOWS,
    name="djangows-auth",
    description="the same with WS_MIDDLEWARE AuthMiddleware, no session cookie "
    "(anonymous)",
    env=_dj("djangows_project.settings", BENCH_AUTH="1", BENCH_BROADCAST="memory"),
)
DJANGOWS_LOGIN = replace(
    DJANGOWS_AUTH,
    name="djangows-login",
    description="the same with WS_MIDDLEWARE AuthMiddleware, logged-in session cookie",
    session=True,
)
DJANGOWS_DSL = replace(
    DJANGOWS,
    name="djangows-dsl",
    description="django-ws @ws_route functions, MemoryBackend",
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

# Group history: the same app with WS_BROADCAST["HISTORY"] for the group "room".
DJANGOWS_HISTORY = replace(
    DJANGOWS,
    name="djangows-history",
    description="the same with HISTORY for the group (SIZE 1,000, TTL 600 s)",
    env=_dj(
        "djangows_project.settings",
        BENCH_AUTH="0",
        BENCH_BROADCAST="memory",
        BENCH_HISTORY="1",
    ),
    needs="djangows-history",
    base="djangows",
)

# Broadcast through Redis: two processes share the benchmark's own redis-server.
RAW_REDIS = replace(
    RAW,
    description="bare ASGI app, redis-py PUBLISH + one SUBSCRIBE per process",
    env=(("RAW_BROADCAST", "redis"),),
    needs="redis",
)
# python-socketio: one endpoint, the route in the query; the loadgen speaks Socket.IO.
SOCKETIO = Target(
    "socketio",
    "python-socketio AsyncServer (ASGIApp), rooms, in-process manager",
    "socketio_app:app",
    path_template="/socket.io/?EIO=4&transport=websocket&r={name}",
    loadgen_args=("--protocol", "socketio"),
    needs="socketio",
)
SOCKETIO_REDIS = replace(
    SOCKETIO,
    description="python-socketio AsyncServer, AsyncRedisManager",
    env=(("SIO_BROADCAST", "redis"),),
    needs="socketio-redis",
)
DJANGOWS_REDIS = replace(
    DJANGOWS,
    description="django-ws subclass, RedisBackend",
    env=_dj("djangows_project.settings", BENCH_AUTH="0", BENCH_BROADCAST="redis"),
    needs="djangows-redis",
)
DJANGOWS_CLUSTER = replace(
    DJANGOWS_REDIS,
    name="djangows-cluster",
    description="django-ws subclass, RedisBackend with CLUSTER, 3 masters + 3 replicas",
    env=_dj(
        "djangows_project.settings", BENCH_AUTH="0", BENCH_BROADCAST="redis-cluster"
    ),
)
# Broadcast through PostgreSQL: two processes share the scenario's own PostgreSQL.
RAW_POSTGRES = replace(
    RAW,
    name="raw-postgres",
    description="bare ASGI app, psycopg SELECT pg_notify + one LISTEN connection "
    "per process",
    env=(("RAW_BROADCAST", "postgres"),),
    needs="psycopg",
    base="raw",
)
DJANGOWS_POSTGRES = replace(
    DJANGOWS_REDIS,
    name="djangows-postgres",
    description="django-ws subclass, PostgresBackend",
    env=_dj("djangows_project.settings", BENCH_AUTH="0", BENCH_BROADCAST="postgres"),
    needs="djangows-postgres",
)
DJANGOWS_DSL_REDIS = replace(
    DJANGOWS_REDIS,
    name="djangows-dsl",
    description="django-ws @ws_route, RedisBackend",
    prefix="/dsl",
)
DJANGOWS_HISTORY_REDIS = replace(
    DJANGOWS_REDIS,
    name="djangows-history",
    description="the same with HISTORY for the group (SIZE 1,000, TTL 600 s)",
    env=_dj(
        "djangows_project.settings",
        BENCH_AUTH="0",
        BENCH_BROADCAST="redis",
        BENCH_HISTORY="1",
    ),
    base="djangows",
)
CHANNELS_REDIS = replace(
    CHANNELS,
    name="channels-redis",
    description="Channels, channels_redis RedisChannelLayer",
    env=_dj("channels_project.settings", BENCH_AUTH="0", BENCH_LAYER="redis"),
    needs="channels-redis",
    base="channels",
)
CHANNELS_PUBSUB = replace(
    CHANNELS_REDIS,
    name="channels-pubsub",
    description="Channels, channels_redis RedisPubSubChannelLayer",
    env=_dj("channels_project.settings", BENCH_AUTH="0", BENCH_LAYER="pubsub"),
)


def _sync(name: str, description: str, like: Target | None, needs: str) -> Target:
    """A broadcast_sync caller (no server) with ``like``'s settings."""
    kind = name.split("-")[0]
    return Target(
        name,
        description,
        sync_kind=kind,
        env=like.env if like else (),
        needs=needs,
        base=kind,
    )


# broadcast_sync from a plain process; the name says the kind and the backend.
SYNC_TARGETS = [
    _sync("raw-redis", "redis-py Redis.publish (sync)", None, "redis"),
    _sync(
        "djangows-memory",
        "django_ws.broadcast_sync, MemoryBackend",
        DJANGOWS,
        "djangows-broadcast",
    ),
    _sync(
        "djangows-redis",
        "django_ws.broadcast_sync, RedisBackend",
        DJANGOWS_REDIS,
        "djangows-redis",
    ),
    Target(
        "raw-postgres",
        "psycopg SELECT pg_notify (sync, autocommit)",
        sync_kind="raw-postgres",
        needs="psycopg",
        base="raw",
    ),
    _sync(
        "djangows-postgres",
        "django_ws.broadcast_sync, PostgresBackend (outside a transaction)",
        DJANGOWS_POSTGRES,
        "djangows-postgres",
    ),
    _sync(
        "channels-memory",
        "async_to_sync(group_send), InMemoryChannelLayer",
        CHANNELS,
        "channels",
    ),
    _sync(
        "channels-redis",
        "async_to_sync(group_send), RedisChannelLayer",
        CHANNELS_REDIS,
        "channels-redis",
    ),
    _sync(
        "channels-pubsub",
        "async_to_sync(group_send), RedisPubSubChannelLayer",
        CHANNELS_PUBSUB,
        "channels-redis",
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
BROADCAST_TARGETS = [RAW, STARLETTE, CHANNELS, DJANGOWS, DJANGOWS_DSL, DJANGOWS_102]
REDIS_BROADCAST_TARGETS = [
    RAW_REDIS,
    DJANGOWS_REDIS,
    DJANGOWS_DSL_REDIS,
    CHANNELS_REDIS,
    CHANNELS_PUBSUB,
]
# Issue 18's scale scenarios add python-socketio, the peer with rooms and Redis.
RATE_TARGETS = [*BROADCAST_TARGETS, SOCKETIO]
RATE_REDIS_TARGETS = [*REDIS_BROADCAST_TARGETS, SOCKETIO_REDIS]
# The raw floor and django-ws on one Redis, then django-ws on a Redis Cluster.
CLUSTER_BROADCAST_TARGETS = [RAW_REDIS, DJANGOWS_REDIS, DJANGOWS_CLUSTER]
# The floors on Redis and on PostgreSQL, django-ws on one Redis and on PostgreSQL.
POSTGRES_BROADCAST_TARGETS = [RAW_REDIS, RAW_POSTGRES, DJANGOWS_REDIS, DJANGOWS_POSTGRES]
# Group history on and off: broadcast (one process, and two through Redis), then
# recovery and memory, where both backends' rows share a table.
HISTORY_BROADCAST_TARGETS = [DJANGOWS, DJANGOWS_HISTORY]
HISTORY_REDIS_TARGETS = [DJANGOWS_REDIS, DJANGOWS_HISTORY_REDIS]
HISTORY_RECOVERY_TARGETS = [
    DJANGOWS_HISTORY,
    replace(
        DJANGOWS_HISTORY_REDIS,
        name="djangows-history-redis",
        description="django-ws subclass, RedisBackend with HISTORY for the group",
    ),
]
HISTORY_MEMORY_TARGETS = [DJANGOWS_HISTORY]
# Live HTML (benchmarks/live_fragment.py, no server): base "djangows" selects both.
LIVE_TARGETS = [
    Target(
        "djangows-live",
        "broadcast_fragment: the template rendered per broadcast, live stream members",
        env=(("BENCH_LIVE_KIND", "fragment"),),
        needs="djangows-live",
        base="djangows",
    ),
    Target(
        "djangows-prerendered",
        "broadcast(raw=True) of the same frame rendered beforehand, plain members",
        env=(("BENCH_LIVE_KIND", "prerendered"),),
        needs="djangows-live",
        base="djangows",
    ),
]
TARGET_NAMES = [t.name for t in CHURN_TARGETS] + [
    "channels-redis",
    "channels-pubsub",
    "djangows-history",
    "djangows-history-redis",
    "djangows-cluster",
    "djangows-postgres",
    "raw-postgres",
    *(t.name for t in LIVE_TARGETS),
    "socketio",
]
