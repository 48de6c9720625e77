"""django-ws 1.0.2 (PyPI) benchmark project; runs in benchmarks/.venv-102."""

from __future__ import annotations

from bench_settings import *  # noqa: F403

ROOT_URLCONF = (
    "djangows102_project.urls"  # WebSocket routes: djangows102_project.ws_urls
)
