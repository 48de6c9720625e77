"""Django settings for the django-ws test suite.

Server processes started by ``tests.live_server.LiveServer`` import this module too.
They get their own settings as JSON in ``DJANGO_WS_TEST_SETTINGS`` (applied last, so
it can set anything: ``ROOT_WS_URLCONF``, ``WS_MIDDLEWARE``, ``WS_BROADCAST``...) and
the test process's database file in ``DJANGO_WS_TEST_DB``.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile

SECRET_KEY = "django-ws-tests-not-a-secret"
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django_ws",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.urls"

# A file, not ":memory:", because server processes must see the rows the tests
# write (with the ``transactional_db`` fixture). TEST.NAME keeps pytest-django on
# this same file; the pid keeps two concurrent test runs apart.
_DB_PATH = os.environ.get("DJANGO_WS_TEST_DB") or os.path.join(
    tempfile.gettempdir(), f"django_ws_tests_{os.getpid()}.sqlite3"
)
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _DB_PATH,
        "TEST": {"NAME": _DB_PATH},
    }
}
# The PostgreSQL of the PostgresBackend tests (``scripts/ensure_postgres.sh``
# creates the database). No test marks it for pytest-django, so no test database
# is made for it: its tables are the backend's own (``migrate django_ws``), and
# each test keeps apart from concurrent runs with a ``PREFIX`` of its own.
DATABASES["postgres"] = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": os.environ.get("DJANGO_WS_TEST_PG_DATABASE", "django_ws_test"),
    "HOST": "127.0.0.1",
    "PORT": os.environ.get("DJANGO_WS_TEST_PG_PORT", "5432"),
    "USER": "postgres",
}
# A private cluster that tests stop and start (``tests/private_postgres.py``).
DATABASES["postgres_private"] = {
    **DATABASES["postgres"],
    "NAME": "postgres",
    "PORT": os.environ.get("DJANGO_WS_TEST_PG_PRIVATE_PORT") or str(_free_port()),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django_ws": {"handlers": ["stderr"], "level": "DEBUG"}},
}

globals().update(json.loads(os.environ.get("DJANGO_WS_TEST_SETTINGS") or "{}"))
