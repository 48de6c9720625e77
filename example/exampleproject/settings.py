"""Settings of the django-ws example project: a chat, a ticker, a job, a live board, a classic socket.

SQLite and the in-memory broadcast backend by default, so it runs with nothing
else installed. Environment variables change that:

- ``DJANGO_WS_REDIS_URL=redis://127.0.0.1:6379/0`` broadcasts through Redis, so
  several processes (``runserver 8000`` and ``runserver 8001``) share chat rooms;
  with ``DJANGO_WS_REDIS_CLUSTER=1`` that URL names any node of a Redis Cluster;
- ``DJANGO_WS_POSTGRES_DB=<database>`` runs everything on PostgreSQL only: that
  database (on ``PGHOST``/``PGPORT``/``PGUSER``, default 127.0.0.1:5432, postgres) holds
  the project's tables and carries the broadcasts (``PostgresBackend``), no Redis;
- ``DJANGO_WS_EXAMPLE_DB=/path/to/file.sqlite3`` uses another database file
  (the browser tests use a temporary one).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "django-ws-example-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    # Before staticfiles, so that `manage.py runserver` is django-ws's: it serves
    # HTTP and WebSockets (and static files) with uvicorn, with autoreload.
    "django_ws",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "chat",
    "ticker",
    "jobs",
    "classic",
    "board",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "exampleproject.urls"
# WebSocket routes: exampleproject/ws_urls.py (found next to ROOT_URLCONF) and the
# @ws_route functions and classes in each app's ws.py (autodiscovered).

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

POSTGRES_DB = os.environ.get("DJANGO_WS_POSTGRES_DB")
if POSTGRES_DB:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": POSTGRES_DB,
            "HOST": os.environ.get("PGHOST", "127.0.0.1"),
            "PORT": os.environ.get("PGPORT", "5432"),
            "USER": os.environ.get("PGUSER", "postgres"),
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DJANGO_WS_EXAMPLE_DB") or BASE_DIR / "db.sqlite3",
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"

STATIC_URL = "static/"
STATICFILES_DIRS: list = [BASE_DIR / "static"]
# The live board's client libraries: htmx, its ws extension and Turbo, installed
# by npm into the repository's node_modules/ (scripts/ensure_npm_packages.sh; not
# committed). Served as static/htmx.org/, static/htmx-ext-ws/, static/turbo/.
NODE_MODULES = BASE_DIR.parent / "node_modules"
LIVE_ASSETS = {
    "htmx.org": NODE_MODULES / "htmx.org" / "dist",
    "htmx-ext-ws": NODE_MODULES / "htmx-ext-ws" / "dist",
    "turbo": NODE_MODULES / "@hotwired" / "turbo" / "dist",
}
LIVE_ASSETS_INSTALLED = all(path.is_dir() for path in LIVE_ASSETS.values())
if LIVE_ASSETS_INSTALLED:
    STATICFILES_DIRS += list(LIVE_ASSETS.items())

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

# Every socket gets request.session and request.user from the session cookie (the
# seed README's AuthAsyncMiddleware); the chat adds LoginRequiredMiddleware.
WS_MIDDLEWARE = ["django_ws.middleware.AuthMiddleware"]

# Chat rooms (groups "chat.<room>") keep their last 200 messages for 10 minutes: a page
# that reconnects, to this process or another one behind Redis, gets what it missed.
# The live board's streams ("board:board.board:<pk>") keep theirs too, so a page
# rendered just before a change still gets it when its socket connects.
CHAT_HISTORY = {
    "chat.*": {"SIZE": 200, "TTL": 600},
    "board:*": {"SIZE": 200, "TTL": 600},
}
REDIS_URL = os.environ.get("DJANGO_WS_REDIS_URL")
if POSTGRES_DB:
    WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.PostgresBackend",
        "LOCATION": "default",
        "HISTORY": CHAT_HISTORY,
    }
elif REDIS_URL:
    WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"CLUSTER": os.environ.get("DJANGO_WS_REDIS_CLUSTER") == "1"},
        "HISTORY": CHAT_HISTORY,
    }
else:
    WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.MemoryBackend",
        "HISTORY": CHAT_HISTORY,
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "django_ws": {"handlers": ["console"], "level": "INFO"},
        "example": {"handlers": ["console"], "level": "INFO"},
    },
}
