"""A WebSocket middleware of the project's own, in the seed README's style."""

from __future__ import annotations

import logging
import time
from typing import Any

logger = logging.getLogger("example")


class ConnectionLogMiddleware:
    """Log who opened a socket and how long it stayed open.

    Built once with the next callable and called once per connection, so it keeps
    nothing about a connection on ``self``: the start time is a local.
    """

    def __init__(self, next: Any) -> None:
        self.next = next

    async def __call__(self, ws: Any) -> Any:
        started = time.monotonic()
        logger.info("%s opened by %s", ws.scope["path"], ws.request.user)
        try:
            return await self.next(ws)
        finally:
            logger.info(
                "%s closed after %.1f s (code %s)",
                ws.scope["path"],
                time.monotonic() - started,
                ws.close_code,
            )
