"""The admin live view's data: each process's snapshot, and closes sent between processes.

Every process writes a snapshot of its sockets to the operations store (with a
TTL, so a dead process drops out) shortly after a socket opens or closes and at
least every third of ``WS_OPERATIONS_TTL``. A snapshot's cost is bounded: it
holds the counts per route, and at most ``WS_LIVE_VIEW_SAMPLE`` sockets and
groups (a sample, marked as such when the process has more).

Closing a socket from the admin is a broadcast to the reserved group
``CONTROL_GROUP``: every process has joined it with a ``ControlMember``, which
closes the named connection, or every connection of the named user, if it is
one of this process's. So the close reaches the owning process on any backend.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from ..broadcast import broadcast_sync, get_backend
from ..broadcast.base import user_key
from ..connection_ids import process_id
from ..outbox import SENT

if TYPE_CHECKING:
    from collections.abc import Awaitable

#: ``tracker.Tracker`` and ``tracker.ConnectionStats``, which import this module.
Tracker = Any
ConnectionStats = Any

logger = logging.getLogger("django_ws")

#: The group every process joins to take commands from the admin.
CONTROL_GROUP = "django_ws.control"
#: The key that marks a broadcast to ``CONTROL_GROUP`` as a command.
COMMAND_KEY = "django_ws_control"
#: How a socket closed from the admin is closed.
ADMIN_CLOSE_CODE = 1008
ADMIN_CLOSE_REASON = "Closed by an administrator"
#: At most one snapshot per this many seconds, however busy the process.
MIN_INTERVAL = 0.5
#: Groups listed per socket in a snapshot.
GROUPS_PER_SOCKET = 10
STARTED = time.time()


def send_close(*, connection: str | None = None, user: Any = None) -> None:
    """Close a connection (by id) or every connection of a user (by pk), anywhere."""
    if (connection is None) == (user is None):
        raise TypeError("Name either a connection id or a user's pk.")
    command = {"close": "connection", "id": connection} if connection is not None else {
        "close": "user",
        "user": str(user),
    }
    broadcast_sync(CONTROL_GROUP, {COMMAND_KEY: command})


def _command(event: dict[str, Any]) -> dict[str, Any] | None:
    try:
        data = json.loads(event.get("text") or "")
    except ValueError:
        return None
    if isinstance(data, dict) and COMMAND_KEY not in data:  # a history envelope
        data = data.get("data")
    if isinstance(data, dict) and isinstance(data.get(COMMAND_KEY), dict):
        return data[COMMAND_KEY]  # type: ignore[no-any-return]
    return None


class ControlMember:
    """This process's member of ``CONTROL_GROUP``: runs the admin's commands here."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.connection_id = f"{process_id()}:control"

    @property
    def presence_user(self) -> Any:
        return None

    def offered_position(self, group: str) -> tuple[str, int] | None:
        return None

    def send_event(self, event: dict[str, Any]) -> Awaitable[None]:
        command = _command(event)
        if command is not None and command.get("close") in ("connection", "user"):
            closed = 0
            for stats in self.tracker.accepted_connections():
                if _matches(stats, command):
                    stats.ws.close(ADMIN_CLOSE_CODE, ADMIN_CLOSE_REASON)
                    closed += 1
            if closed:
                logger.warning("Closed %d socket(s) from the admin: %s", closed, command)
        return SENT


def _matches(stats: ConnectionStats, command: dict[str, Any]) -> bool:
    ws: Any = stats.ws
    if command["close"] == "connection":
        return bool(ws.connection_id == command.get("id"))
    user = ws.presence_user
    return user is not None and str(user_key(user)) == command.get("user")


def _user(ws: Any) -> tuple[Any, str] | None:
    user = ws.presence_user if getattr(ws, "has_request", True) else None
    if user is None:
        return None
    return user_key(user), str(user)


def socket_row(stats: ConnectionStats) -> dict[str, Any]:
    """Return what the live view shows of one socket."""
    ws: Any = stats.ws
    user = _user(ws)
    groups = sorted(itertools.islice(ws.groups, GROUPS_PER_SOCKET)) if ws.groups else []
    return {
        "id": ws.connection_id,
        "route": stats.route,
        "path": ws.scope.get("path", ""),
        "user": None if user is None else user[0],
        "user_label": "" if user is None else user[1],
        "groups": groups,
        "since": stats.since,
        "messages_in": stats.messages_in,
        "messages_out": stats.messages_out,
    }


class LiveView:
    """Publishes this process's snapshot and runs the admin's commands."""

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.member = ControlMember(tracker)
        self._changed: asyncio.Event | None = None
        self.last_error = ""

    def changed(self) -> None:
        """Note that a socket opened or closed: a snapshot follows shortly."""
        if self._changed is not None:
            self._changed.set()

    async def start(self) -> None:
        """Join the control group (on the loop that serves this process's sockets)."""
        self._changed = asyncio.Event()
        try:
            await get_backend().join(CONTROL_GROUP, self.member)
        except Exception as error:  # the backend is away: the beat tries again
            logger.warning("The admin live view could not join its control group: %s", error)
            self.last_error = str(error)

    async def publish_until(self, deadline: float) -> None:
        """Write snapshots when sockets change, until ``deadline`` (monotonic)."""
        changed = self._changed
        assert changed is not None
        backend = get_backend()
        if CONTROL_GROUP not in backend.groups:
            await self.start()
        while True:
            changed.clear()
            await self.write()
            now = time.monotonic()
            if now >= deadline:
                return
            await asyncio.sleep(MIN_INTERVAL)
            try:
                await asyncio.wait_for(changed.wait(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return

    async def write(self) -> None:
        """Write this process's snapshot to the store now."""
        tracker = self.tracker
        try:
            await tracker.store().write_snapshot(self.snapshot())
            self.last_error = ""
        except Exception as error:
            logger.debug("Writing the live view snapshot failed: %r", error)
            self.last_error = str(error) or type(error).__name__
            tracker.count_backend_error("live_view")

    def snapshot(self) -> dict[str, Any]:
        """Return this process's snapshot: counts, and a bounded sample of rows."""
        tracker = self.tracker
        sample = tracker.settings.live_view_sample
        backend = get_backend()
        # No copies of the whole dicts: this runs on the loop, between awaits, so
        # nothing changes them meanwhile, and the cost stays ``sample`` rows.
        groups = ((g, len(m)) for g, m in backend.groups.items() if g != CONTROL_GROUP)
        group_rows = list(itertools.islice(groups, sample))
        accepted = (s for s in tracker.connections.values() if s.accepted)
        rows = [socket_row(stats) for stats in itertools.islice(accepted, sample)]
        open_total = sum(tracker.open_by_route.values())
        return {
            "process": process_id(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": STARTED,
            "written": time.time(),
            "backend": repr(backend),
            "backend_groups": len(backend.groups) - (CONTROL_GROUP in backend.groups),
            "backend_error": self.last_error,
            "open": open_total,
            "routes": dict(tracker.open_by_route),
            "sockets": rows,
            "groups": group_rows,
            "sampled": open_total > len(rows) or len(group_rows) >= sample,
        }
