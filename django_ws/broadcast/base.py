"""What every broadcast backend shares: local membership and local fan-out.

A process keeps its own members per group and fans a message out to them itself;
backends only differ in how a broadcast reaches the other processes (not at all
in memory, one Redis PUBLISH per broadcast whatever the group's size). A message
is encoded once per broadcast and the same ASGI event goes to every member's own
bounded send path, so a member that does not read delays nobody else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..codecs import JSONCodec

_codec = JSONCodec()


class Member(Protocol):
    """What a backend needs of a connection: ``WebSocketHandler`` provides it."""

    @property
    def connection_id(self) -> str:
        """An id unique across processes."""

    @property
    def presence_user(self) -> Any:
        """The authenticated user behind the connection, or ``None``."""

    def send_event(self, event: dict[str, Any]) -> Awaitable[None]:
        """Queue a prepared ``websocket.send`` event on the connection's send path."""


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


def exclusion_ids(exclude: Member | Iterable[Member] | None) -> frozenset[str]:
    """Return the ids of the connections that a broadcast must skip."""
    if exclude is None:
        return frozenset()
    if isinstance(exclude, Iterable):
        return frozenset(c.connection_id for c in exclude)
    return frozenset((exclude.connection_id,))


@dataclass
class Presence:
    """Who is in a group across processes.

    ``count`` is the number of member connections, anonymous ones included;
    ``users`` the sorted, distinct primary keys of the authenticated users behind
    them (a user with two tabs open counts twice in ``count``, once in ``users``).
    """

    count: int
    users: list[Any] = field(default_factory=list)


def user_key(user: Any) -> int | str:
    """Return how ``Presence.users`` names ``user``: its pk, as JSON can carry it."""
    pk = user.pk
    return pk if isinstance(pk, (int, str)) else str(pk)


def sorted_users(users: Iterable[Any]) -> list[Any]:
    """Return distinct user keys in a stable order (numbers first, then strings)."""
    return sorted(set(users), key=lambda key: (isinstance(key, str), key))


def local_users(members: Iterable[Member]) -> list[Any]:
    """Return the sorted, distinct user keys behind ``members``."""
    return sorted_users(
        user_key(member.presence_user)
        for member in members
        if member.presence_user is not None
    )


class BaseBackend:
    """Local group membership and fan-out; subclasses carry messages between processes."""

    def __init__(
        self, location: str | None = None, options: dict[str, Any] | None = None
    ) -> None:
        self.location = location
        self.options = options or {}
        self.groups: dict[str, set[Member]] = {}
        #: The event loop that serves this process's members (set on first join).
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Connect to whatever carries messages; called at lifespan startup."""

    async def stop(self) -> None:
        """Disconnect; called at lifespan shutdown."""

    def member_count(self) -> int:
        """Return how many memberships this process holds (for leak checks)."""
        return sum(len(members) for members in self.groups.values())

    async def join(self, group: str, connection: Member) -> None:
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

    async def leave(self, group: str, connection: Member) -> None:
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
            if exclude and member.connection_id in exclude:
                continue
            member.send_event(message)  # the member's own bounded send path
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
