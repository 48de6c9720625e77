"""An ASGI app built without ``get_websocket_application``: checked at lifespan startup.

``WebSocketApplication(...)`` made by hand skips the import-time check, so a
misconfiguration surfaces in the lifespan startup instead; the tests check that
uvicorn then refuses to start, with the fix in its log.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup(set_prefix=False)

from django.core.handlers.asgi import ASGIHandler  # noqa: E402

from django_ws import WebSocketApplication  # noqa: E402

application = WebSocketApplication(ASGIHandler())
