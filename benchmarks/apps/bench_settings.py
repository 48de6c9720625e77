"""Django settings shared by the benchmark projects (each project extends them).

Environment: ``BENCH_DB`` is the SQLite file (sessions and users for the
auth variants); ``REDIS_URL`` is the benchmark's own redis-server;
``BENCH_HISTORY=1`` keeps a history of the group "room" (``BENCH_HISTORY_SIZE``
messages, default 1,000).
"""

from __future__ import annotations

import os

SECRET_KEY = "benchmarks-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_DB", "/tmp/django-ws-bench.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
LOGGING_CONFIG = None
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6399/0")
BENCH_AUTH = os.environ.get("BENCH_AUTH") == "1"
BENCH_BROADCAST = os.environ.get("BENCH_BROADCAST", "memory")
BENCH_HISTORY = os.environ.get("BENCH_HISTORY") == "1"
BENCH_HISTORY_SIZE = int(os.environ.get("BENCH_HISTORY_SIZE", "1000"))
