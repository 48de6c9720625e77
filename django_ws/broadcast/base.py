"""What every broadcast backend shares: local membership and local fan-out.

A process keeps its own members per group and fans a message out to them itself;
backends only differ in how a broadcast reaches the other processes (not at all
in memory, one Redis PUBLISH per broadcast whatever the group's size). A message
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


def _new_process_id() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


#: Identifies this process among those sharing a backend (renewed in forked children).
PROCESS_ID = _new_process_id()
_connection_numbers = itertools.count(1)


def _after_fork() -> None:
    # A worker forked from a preloaded master must not share the master's id, or
    # its connection ids would collide with its siblings' and its own broadcasts
    # would be taken for theirs.
    global PROCESS_ID, _connection_numbers
    PROCESS_ID = _new_process_id()
    _connection_numbers = itertools.count(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def connection_id(connection: WebSocketHandler) -> str:
    """Return the id of ``connection``, unique across processes (made on first use)."""
    found: str | None = connection.__dict__.get("_broadcast_id")
    if found is None:
        found = connection.__dict__["_broadcast_id"] = (
            f"{PROCESS_ID}:{next(_connection_numbers)}"
        )
    return found


def check_group(group: Any) -> str:
    """Return ``group`` if it is a usable group name, else raise ``TypeError``."""
    if not isinstance(group, str) or not group:
        raise TypeError(f"A group name is a non-empty str, got {group!r}")
    return group


def send_event(data: Any, *, raw: bool = False) -> dict[str, Any]:
    """Return the ASGI send event for ``data``: JSON-encoded, or as is with ``raw``."""
    if raw:
        if isinstance(data, str):
            return {"type": "websocket.send", "text": data}
        if isinstance(data, (bytes, bytearray, memoryview)):
            return {"type": "websocket.send", "bytes": bytes(data)}
        raise TypeError(f"raw broadcast takes str or bytes, not {type(data).__name__}")
    return {"type": "websocket.send", "text": _codec.encode(data)}


def exclusion_ids(
    exclude: WebSocketHandler | Iterable[WebSocketHandler] | None,
) -> frozenset[str]:
    """Return the ids of the connections that a broadcast must skip."""
    if exclude is None:
        return frozenset()
    if isinstance(exclude, Iterable):
        return frozenset(connection_id(c) for c in exclude)
    return frozenset((connection_id(exclude),))


@dataclass
class Presence:
    """Who is in a group across processes.

    ``count`` is the number of member connections, anonymous ones included;
    ``users`` the sorted, distinct primary keys of the authenticated users behind
    them (a user with two tabs open counts twice in ``count``, once in ``users``).
    """

    count: int
    users: list[Any] = field(default_factory=list)


def user_of(connection: WebSocketHandler) -> Any:
    """Return the authenticated user behind ``connection``, or ``None``."""
    request = connection._request
    user = getattr(request, "user", None) if request is not None else None
    if user is not None and getattr(user, "is_authenticated", False):
        return user
    return None


def user_key(user: Any) -> int | str:
    """Return how ``Presence.users`` names ``user``: its pk, as JSON can carry it."""
    pk = user.pk
    return pk if isinstance(pk, (int, str)) else str(pk)


def sorted_users(users: Iterable[Any]) -> list[Any]:
    """Return distinct user keys in a stable order (numbers first, then strings)."""
    return sorted(set(users), key=lambda key: (isinstance(key, str), key))


def local_users(members: Iterable[WebSocketHandler]) -> list[Any]:
    """Return the sorted, distinct user keys behind ``members``."""
    return sorted_users(
        user_key(user) for user in map(user_of, members) if user is not None
    )


class BaseBackend:
    """Local group membership and fan-out; subclasses carry messages between processes."""

    def __init__(
        self, location: str | None = None, options: dict[str, Any] | None = None
    ) -> None:
        self.location = location
        self.options = options or {}
        self.groups: dict[str, set[WebSocketHandler]] = {}
        #: The event loop that serves this process's members (set on first join).
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
        check_group(group)
        self._loop = asyncio.get_running_loop()
        members = self.groups.get(group)
        if members is None:
            members = self.groups[group] = set()
            members.add(connection)
            await self.group_opened(group)
        else:
            members.add(connection)
            await self.members_changed(group)

    async def leave(self, group: str, connection: WebSocketHandler) -> None:
        """Remove ``connection`` from ``group`` in this process."""
        members = self.groups.get(group)
        if members is None or connection not in members:
            return
        members.discard(connection)
        if not members:
            del self.groups[group]
            await self.group_closed(group)
        else:
            await self.members_changed(group)

    async def group_opened(self, group: str) -> None:
        """Called when this process gets its first member of ``group``."""

    async def group_closed(self, group: str) -> None:
        """Called when this process loses its last member of ``group``."""

    async def members_changed(self, group: str) -> None:
        """Called when a member joins or leaves ``group`` and others remain."""

    def deliver(
        self, group: str, message: dict[str, Any], exclude: frozenset[str] = frozenset()
    ) -> int:
        """Hand ``message`` to every local member of ``group``; return how many.

        Call it on the members' event loop (``deliver_local`` takes care of that).
        """
        members = self.groups.get(group)
        if not members:
            return 0
        delivered = 0
        for member in tuple(members):
            if exclude and connection_id(member) in exclude:
                continue
            member._outbox.put(message)  # the member's own bounded send path
            delivered += 1
        return delivered

    def deliver_local(
        self, group: str, message: dict[str, Any], exclude: frozenset[str]
    ) -> None:
        """``deliver`` from any thread: now on the members' loop, else handed to it."""
        loop = self._loop
        if loop is None or group not in self.groups:
            return  # no member in this process
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.deliver(group, message, exclude)
            return
        try:
            loop.call_soon_threadsafe(self.deliver, group, message, exclude)
        except RuntimeError:  # the loop is closed: its members are gone
            pass

    async def publish(
        self, group: str, message: dict[str, Any], exclude: frozenset[str]
    ) -> None:
        """Carry ``message`` to every process's members of ``group``."""
        raise NotImplementedError

    def publish_sync(
        self, group: str, message: dict[str, Any], exclude: frozenset[str]
    ) -> None:
        """``publish`` for code without an event loop (views, tasks, scripts)."""
        raise NotImplementedError

    async def presence(self, group: str) -> Presence:
        """Return the live members of ``group`` across processes."""
        raise NotImplementedError
