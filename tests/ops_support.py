"""Settings for the operations tests: the admin installed, the ops test routes."""

from __future__ import annotations

from typing import Any

OPS_WS_URLCONF = "tests.e2e.apps.ops_ws"
OPS_URLCONF = "tests.e2e.apps.ops_http"

ADMIN_SETTINGS: dict[str, Any] = {
    "INSTALLED_APPS": [
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "django_ws",
    ],
    "MIDDLEWARE": [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    "TEMPLATES": [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ],
    "STATIC_URL": "/static/",
    "PASSWORD_HASHERS": ["django.contrib.auth.hashers.MD5PasswordHasher"],
}


def ops_settings(**overrides: Any) -> dict[str, Any]:
    """Return server settings with the admin and the ops routes, plus ``overrides``."""
    return {
        **ADMIN_SETTINGS,
        "ROOT_WS_URLCONF": OPS_WS_URLCONF,
        "ROOT_URLCONF": OPS_URLCONF,
        "WS_MIDDLEWARE": ["django_ws.middleware.AuthMiddleware"],
        **overrides,
    }

