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
from typing import Any, ClassVar, Protocol

from django.core.exceptions import ImproperlyConfigured

from ..codecs import JSONCodec
from .events import NO_EVENTS, BackendEvents
from .history import HistoryPolicy, HistoryRules, Recovery
from .protocol import recovery_event

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

    def offered_position(self, group: str) -> tuple[str, int] | None:
        """Take the ``(epoch, offset)`` offered for ``group`` at the handshake (once)."""


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
class CatchUp:
    """A member joining a history group: live messages wait while it replays.

    Until the replay is sent, ``buffer`` collects the live deliveries; then they
    go out unless at or below ``floor`` (the last offset the member has, in
    ``epoch``), and ``floor`` keeps filtering the deliveries that were already
    scheduled. When the group's offsets start over (a new epoch) while the
    member waits, ``restart`` is where the new epoch begins in ``buffer``: what
    comes from there on is not comparable with ``floor`` and all goes out.
    """

    floor: int = -1
    buffer: list[tuple[int, dict[str, Any]]] | None = field(default_factory=list)
    epoch: str | None = None
    restart: int | None = None


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

    #: Whether a message older than a joining member's replay may still be
    #: delivered after the replay (a pub/sub copy read late): then the member's
    #: floor keeps filtering until its first delivery above it.
    late_deliveries: ClassVar[bool] = False

    def __init__(
        self, location: str | None = None, options: dict[str, Any] | None = None
    ) -> None:
        self.location = location
        self.options = options or {}
        self.groups: dict[str, set[Member]] = {}
        #: Which groups keep history (``WS_BROADCAST["HISTORY"]``).
        self.history = HistoryRules()
        self._catching_up: dict[str, dict[Member, CatchUp]] = {}
        #: The event loop that serves this process's members (set on first join).
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Told of reconnects, failed broker operations and history gaps (metrics).
        self.events: BackendEvents = NO_EVENTS

    async def start(self) -> None:
        """Connect to whatever carries messages; called at lifespan startup."""

    async def stop(self) -> None:
        """Disconnect; called at lifespan shutdown."""

    def member_count(self) -> int:
        """Return how many memberships this process holds (for leak checks)."""
        return sum(len(members) for members in self.groups.values())

    def configure_history(self, rules: HistoryRules) -> None:
        """Keep history for the groups ``rules`` match (``create_backend`` calls it).

        A backend that implements no ``recover`` refuses, at startup.
        """
        if type(self).recover is BaseBackend.recover:
            raise ImproperlyConfigured(
                f"WS_BROADCAST['HISTORY'] is set, but {type(self).__qualname__} keeps "
                "no group history: remove 'HISTORY' or use "
                "'django_ws.broadcast.MemoryBackend'."
            )
        self.history = rules

    def history_policy(self, group: str) -> HistoryPolicy | None:
        """Return the history ``group`` keeps, or ``None`` (one cached lookup)."""
        return self.history.policy(group) if self.history else None

    async def join(self, group: str, connection: Member) -> None:
        """Add ``connection`` to ``group`` in this process.

        In a group with history the member first gets what it missed since the
        position its client offered, if any (``docs/protocol.md``).
        """
        check_group(group)
        self._loop = asyncio.get_running_loop()
        policy = self.history_policy(group)
        if policy is not None:
            await self._join_history(group, connection, policy)
            return
        await self._add(group, connection)

    async def _add(self, group: str, connection: Member) -> None:
        members = self.groups.get(group)
        if members is None:
            members = self.groups[group] = set()
            members.add(connection)
            await self.group_opened(group)
        else:
            members.add(connection)
            await self.members_changed(group)

    async def _join_history(
        self, group: str, connection: Member, policy: HistoryPolicy
    ) -> None:
        # Become a member first, buffering, so no message after the snapshot of
        # the log is lost; then send the replay, then what came meanwhile.
        state = CatchUp()
        self._catching_up.setdefault(group, {})[connection] = state
        try:
            await self._add(group, connection)
            offered = connection.offered_position(group)
            if offered is None:
                state.epoch, state.floor = await self.join_position(group)
            else:
                recovery = await self.recover(group, policy, offered)
                await self._replay(group, connection, recovery, state)
        except BaseException:  # closed or cancelled mid-replay: stop holding
            self._caught_up(group, connection, state)
            raise
        buffered, state.buffer = state.buffer or [], None
        restart = len(buffered) if state.restart is None else state.restart
        for index, (offset, message) in enumerate(buffered):
            if offset > state.floor or index >= restart:
                connection.send_event(message)
        if state.restart is not None:
            self._caught_up(group, connection, state)  # nothing older can follow
        elif not self.late_deliveries:
            # Deliveries scheduled before the snapshot may still be queued on the
            # loop: they run before this callback, and ``floor`` drops them.
            loop = asyncio.get_running_loop()
            loop.call_soon(self._caught_up, group, connection, state)

    async def _replay(
        self, group: str, connection: Member, recovery: Recovery, state: CatchUp
    ) -> None:
        entries = recovery.entries
        state.floor = entries[-1].offset if entries else recovery.offset
        state.epoch = recovery.epoch
        await connection.send_event(
            recovery_event(
                group, recovery.recovered, recovery.epoch, recovery.offset, len(entries)
            )
        )
        for entry in entries:
            await connection.send_event(entry.event)

    def _caught_up(self, group: str, connection: Member, state: CatchUp) -> None:
        catching = self._catching_up.get(group)
        if catching is not None and catching.get(connection) is state:
            del catching[connection]
            if not catching:
                del self._catching_up[group]

    async def recover(
        self, group: str, policy: HistoryPolicy, offered: tuple[str, int]
    ) -> Recovery:
        """Return what ``group``'s history holds after the ``offered`` position."""
        raise NotImplementedError(f"{type(self).__name__} keeps no group history")

    async def join_floor(self, group: str) -> int:
        """Return the offset after which a member joining ``group`` gets messages."""
        _, offset = await self.position(group)
        return offset

    async def join_position(self, group: str) -> tuple[str | None, int]:
        """Return ``join_floor`` with its epoch (``None``: unknown)."""
        return None, await self.join_floor(group)

    async def position(self, group: str) -> tuple[str, int]:
        """Return ``group``'s current ``(epoch, offset)``."""
        return self.position_sync(group)

    def position_sync(self, group: str) -> tuple[str, int]:
        """``position`` for code without an event loop."""
        raise NotImplementedError(f"{type(self).__name__} keeps no group history")

    def deliver_history(
        self,
        group: str,
        offset: int,
        message: dict[str, Any],
        exclude: frozenset[str] = frozenset(),
    ) -> None:
        """``deliver`` for a group with history: members still catching up wait.

        Call it on the members' event loop, in offset order.
        """
        members = self.groups.get(group)
        if not members:
            return
        catching = self._catching_up.get(group)
        for member in tuple(members):
            if exclude and member.connection_id in exclude:
                continue
            if catching:
                state = catching.get(member)
                if state is not None:
                    if state.buffer is not None:
                        state.buffer.append((offset, message))
                        continue
                    if offset <= state.floor:
                        continue
                    self._caught_up(group, member, state)
            member.send_event(message)

    def restart_floors(self, group: str, epoch: str | None = None) -> None:
        """Stop filtering ``group``'s joining members: offsets start over at ``epoch``.

        Call it before delivering the first message of the new epoch. A member
        whose replay already was of ``epoch`` keeps its floor; one still waiting
        for its replay gets every message of the new epoch after it.
        """
        catching = self._catching_up.get(group)
        if catching:
            for member, state in list(catching.items()):
                if epoch is not None and state.epoch == epoch:
                    continue
                if state.buffer is None:
                    self._caught_up(group, member, state)
                elif state.restart is None:
                    state.restart = len(state.buffer)

    async def leave(self, group: str, connection: Member) -> None:
        """Remove ``connection`` from ``group`` in this process."""
        catching = self._catching_up.get(group)
        if catching is not None and catching.pop(connection, None) is not None:
            if not catching:
                del self._catching_up[group]
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
