"""The Django request that a handler sees as ``self.request``."""

from __future__ import annotations

import io
from typing import Any

from django.core.handlers.asgi import ASGIRequest


class WebSocketRequest(ASGIRequest):
    """A Django request built from a websocket scope: method GET, no body.

    Headers, ``COOKIES``, ``GET``, ``META`` and ``path`` behave as in a view, so code
    written for views (sessions, auth, ``get_host()``) works on sockets unchanged.
    """

    def __init__(self, scope: dict[str, Any]) -> None:
        super().__init__({**scope, "method": "GET"}, io.BytesIO())
