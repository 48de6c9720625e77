"""Log records that can be joined: each carries the connection id, route and user id.

``ConnectionLogFilter`` sits on the ``django_ws`` logger and adds to every record
``connection_id``, ``route`` and ``user_id`` (``None`` for records about the
process, not a socket), taken from the record's own ``extra`` if given, else
from the connection whose task logs (``hooks.current_connection``, set by
``Lifecycle.run``; tasks it starts and sync hooks in threads inherit it). A JSON
formatter or ``%(connection_id)s`` in a format string can then follow one socket.
"""

from __future__ import annotations

import logging
from typing import Any

from . import hooks
from .routes import route_label

FIELDS = ("connection_id", "route", "user_id")


def connection_fields(ws: Any) -> dict[str, Any]:
    """Return the log fields of connection ``ws`` (nothing is built to find them)."""
    user = ws.presence_user if ws.has_request else None
    return {
        "connection_id": ws.connection_id,
        "route": route_label(type(ws)),
        "user_id": None if user is None else user.pk,
    }


class ConnectionLogFilter(logging.Filter):
    """Add ``connection_id``, ``route`` and ``user_id`` to a record; let it pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if all(hasattr(record, name) for name in FIELDS):
            return True
        ws = hooks.current_connection.get()
        fields = connection_fields(ws) if ws is not None else dict.fromkeys(FIELDS)
        for name, value in fields.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


_FILTER = ConnectionLogFilter()


def install() -> None:
    """Put the filter on the ``django_ws`` logger (once)."""
    logger = logging.getLogger("django_ws")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
