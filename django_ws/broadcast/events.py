"""What a broker backend tells operators: reconnects, failed operations, gaps.

A backend calls its ``events`` (a ``BackendEvents``) where it also logs these
events, so that metrics count them without parsing log messages. The base class
does nothing; ``operations.backend_events`` installs one that counts them in
Prometheus when ``WS_OPERATIONS['METRICS']`` is on.
"""

from __future__ import annotations

from typing import Literal

#: How a gap in a history group's deliveries ended: its messages read from the
#: history and delivered in order, or ``recovered: false`` sent to the members.
GapOutcome = Literal["repaired", "lost"]


class BackendEvents:
    """Receives a backend's events; every method does nothing by default.

    Methods are called on the backend's event loop (or the thread of a sync
    publish) and must return quickly without raising.
    """

    def reconnecting(self) -> None:
        """The broker connection that carries messages here was lost (once per outage)."""

    def failed(self, operation: str) -> None:
        """An ``operation`` on the broker failed (``"subscription"``, ``"recover"``,
        ``"position"``, ``"history_read"``, ``"history_reset"``, ``"presence"``,
        ``"payload_read"``)."""

    def gap(self, outcome: GapOutcome) -> None:
        """A gap in a history group's deliveries was ``"repaired"`` or ``"lost"``."""


#: The shared do-nothing observer every backend starts with.
NO_EVENTS = BackendEvents()
