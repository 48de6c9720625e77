"""django-ws (this checkout) benchmark project.

``BENCH_AUTH=1`` turns on ``django_ws.middleware.AuthMiddleware`` (session and
user); ``BENCH_BROADCAST=redis`` uses ``RedisBackend`` instead of ``MemoryBackend``
(``redis-cluster``: with ``CLUSTER`` on ``REDIS_CLUSTER_URL``; ``postgres``:
``PostgresBackend`` on the alias "broadcast", the runner's private PostgreSQL on
``BENCH_POSTGRES_PORT``, migrated by the runner);
``BENCH_HISTORY=1`` keeps the last ``BENCH_HISTORY_SIZE`` messages of the group
"room" (the one ``/room`` joins and ``/trigger`` broadcasts to) for 10 minutes.
"""

from __future__ import annotations

import os

from bench_settings import *  # noqa: F403
from bench_settings import (
    BENCH_AUTH,
    BENCH_BROADCAST,
    BENCH_HISTORY,
    BENCH_HISTORY_SIZE,
    DATABASES,
    INSTALLED_APPS,
    REDIS_URL,
)

# djangows_project is an app so that django-ws autodiscovers djangows_project/ws.py.
INSTALLED_APPS = [*INSTALLED_APPS, "django_ws", "djangows_project"]
ROOT_URLCONF = "djangows_project.urls"  # WebSocket routes: djangows_project.ws_urls

WS_MIDDLEWARE = ["django_ws.middleware.AuthMiddleware"] if BENCH_AUTH else []
WS_BROADCAST: dict[str, object] = (
    {"BACKEND": "django_ws.broadcast.RedisBackend", "LOCATION": REDIS_URL}
    if BENCH_BROADCAST == "redis"
    else {"BACKEND": "django_ws.broadcast.MemoryBackend"}
)
if BENCH_BROADCAST == "redis-cluster":  # the scenario's own cluster
    WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": os.environ["REDIS_CLUSTER_URL"],
        "OPTIONS": {"CLUSTER": True},
    }
if BENCH_BROADCAST == "postgres":  # the scenario's own PostgreSQL
    DATABASES = {
        **DATABASES,
        "broadcast": {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": "127.0.0.1",
            "PORT": os.environ["BENCH_POSTGRES_PORT"],
            "NAME": "postgres",
            "USER": "postgres",
        },
    }
    WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.PostgresBackend",
        "LOCATION": "broadcast",
    }
if BENCH_HISTORY:
    WS_BROADCAST["HISTORY"] = {"room": {"SIZE": BENCH_HISTORY_SIZE, "TTL": 600}}
