"""The ASGI application that ``LiveServer`` runs: the test project with django_ws."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from django_ws import get_websocket_application  # noqa: E402

application = get_websocket_application()
