"""The states of a connection: one enum instead of a flag per fact."""

from __future__ import annotations

import enum


class ConnectionState(enum.Enum):
    """Where a connection is in its life; it only ever moves down this list."""

    #: The handshake is under way: the Origin check and the middleware run.
    CONNECTING = "connecting"
    #: Refused before accept (HTTP status or close); nothing more happens.
    REFUSED = "refused"
    #: Accepted: hooks run, messages flow.
    OPEN = "open"
    #: A close is queued, or the client has gone; incoming messages are ignored.
    CLOSING = "closing"
    #: Closing at once (a slow client, say): queued messages dropped, hooks cancelled.
    ABORTING = "aborting"
    #: The lifecycle is over and ``on_close`` has run.
    CLOSED = "closed"


CONNECTING = ConnectionState.CONNECTING
REFUSED = ConnectionState.REFUSED
OPEN = ConnectionState.OPEN
CLOSING = ConnectionState.CLOSING
ABORTING = ConnectionState.ABORTING
CLOSED = ConnectionState.CLOSED
