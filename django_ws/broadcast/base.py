"""What every broadcast backend shares: local membership and local fan-out.

A process keeps its own members per group and fans a message out to them itself;
backends only differ in how a broadcast reaches the processes (directly in
memory, or one Redis PUBLISH per broadcast whatever the group's size). A message
is encoded once per broadcast and the same ASGI event goes to every member's own
bounded send path, so a member that does not read delays nobody else.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..codecs import JSONCodec

if TYPE_CHECKING:
    from ..handler import WebSocketHandler

_codec = JSONCodec()

#: Identifies this process among those sharing a backend.
PROCESS_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
_connection_numbers = itertools.count(1)


def connection_id(connection: WebSocketHandler) -> str:
    """Return the process-unique id of ``connection`` (made on first use)."""
    found: str | None = connection.__dict__.get("_broadcast_id")
    if found is None:
        found = connection.__dict__["_broadcast_id"] = f"{PROCESS_ID}:{next(_connection_numbers)}"
    return found


def send_event(data: Any, *, raw: bool = False) -> dict[str, Any]:
    """Return the ASGI send event for ``data``: JSON-encoded, or as is with ``raw``."""
    if raw:
        if isinstance(data, str):
            return {"type": "websocket.send", "text": data}
        if isinstance(data, (bytes, bytearray, memoryview)):
            return {"type": "websocket.send", "bytes": bytes(data)}
        raise TypeError(f"raw broadcast takes str or bytes, not {type(data).__name__}")
    return {"type": "websocket.send", "text": _codec.encode(data)}


def exclusion_ids(exclude: WebSocketHandler | Iterable[WebSocketHandler] | None) -> frozenset[str]:
    """Return the ids of the connections that a broadcast must skip."""
    if exclude is None:
        return frozenset()
    if isinstance(exclude, Iterable):
        return frozenset(connection_id(c) for c in exclude)
    return frozenset((connection_id(exclude),))


@dataclass
class Presence:
    """Who is in a group: live connections across processes, and their users."""

    count: int
    users: list[Any] = field(default_factory=list)


def user_of(connection: WebSocketHandler) -> Any:
    """Return the authenticated user behind ``connection``, or ``None``."""
    request = connection._request
    user = getattr(request, "user", None) if request is not None else None
    if user is not None and getattr(user, "is_authenticated", False):
        return user
    return None


class BaseBackend:
    """Local group membership and fan-out; subclasses carry messages between processes."""

    def __init__(self, location: str | None = None, options: dict[str, Any] | None = None) -> None:
        self.location = location
        self.options = options or {}
        self.groups: dict[str, set[WebSocketHandler]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Connect to whatever carries messages; called at lifespan startup."""

    async def stop(self) -> None:
        """Disconnect; called at lifespan shutdown."""

    def member_count(self) -> int:
        """Return how many memberships this process holds (for leak checks)."""
        return sum(len(members) for members in self.groups.values())

    async def join(self, group: str, connection: WebSocketHandler) -> None:
        """Add ``connection`` to ``group`` in this process."""
        self._loop = asyncio.get_running_loop()
        members = self.groups.get(group)
        if members is None:
            members = self.groups[group] = set()
            members.add(connection)
            await self.group_opened(group)
        else:
            members.add(connection)

    async def leave(self, group: str, connection: WebSocketHandler) -> None:
        """Remove ``connection`` from ``group`` in this process."""
        members = self.groups.get(group)
        if members is None:
            return
        members.discard(connection)
        if not members:
            del self.groups[group]
            await self.group_closed(group)

    async def group_opened(self, group: str) -> None:
        """Called when this process gets its first member of ``group``."""

    async def group_closed(self, group: str) -> None:
        """Called when this process loses its last member of ``group``."""

    def deliver(self, group: str, message: dict[str, Any], exclude: frozenset[str] = frozenset()) -> int:
        """Hand ``message`` to every local member of ``group``; return how many."""
        members = self.groups.get(group)
        if not members:
            return 0
        delivered = 0
        for member in members:
            if exclude and connection_id(member) in exclude:
                continue
            member._outbox.put(message)  # the member's own bounded send path
            delivered += 1
        return delivered

    async def publish(self, group: str, message: dict[str, Any], exclude: frozenset[str]) -> None:
        """Carry ``message`` to every process's members of ``group``."""
        raise NotImplementedError

    def publish_sync(self, group: str, message: dict[str, Any], exclude: frozenset[str]) -> None:
        """``publish`` for code without an event loop (views, tasks, scripts)."""
        raise NotImplementedError

    async def presence(self, group: str) -> Presence:
        """Return the live members of ``group`` across processes."""
        raise NotImplementedError
