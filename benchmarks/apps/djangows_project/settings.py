"""django-ws (this checkout) benchmark project.

``BENCH_AUTH=1`` turns on ``django_ws.middleware.AuthMiddleware`` (session and
user); ``BENCH_BROADCAST=redis`` uses ``RedisBackend`` instead of ``MemoryBackend``.
"""

from __future__ import annotations

from bench_settings import *  # noqa: F403
from bench_settings import BENCH_AUTH, BENCH_BROADCAST, INSTALLED_APPS, REDIS_URL

# djangows_project is an app so that django-ws autodiscovers djangows_project/ws.py.
INSTALLED_APPS = [*INSTALLED_APPS, "django_ws", "djangows_project"]
ROOT_URLCONF = "djangows_project.urls"  # WebSocket routes: djangows_project.ws_urls

WS_MIDDLEWARE = ["django_ws.middleware.AuthMiddleware"] if BENCH_AUTH else []
if BENCH_BROADCAST == "redis":
    WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": REDIS_URL,
    }
else:
    WS_BROADCAST = {"BACKEND": "django_ws.broadcast.MemoryBackend"}
