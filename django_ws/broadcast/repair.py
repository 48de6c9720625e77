"""Server-side repair of a history group's gaps, for backends that carry messages.

A backend whose broker can skip messages (a lost notification, a reconnect, a
broker restart) tracks per subscribed history group the last ``(epoch, offset)``
it delivered here. A message that skips offsets makes it read the missing range
from the history first; a range the history lost gives the members the
``recovered: false`` frame instead (``docs/protocol.md``). The backend provides
``read_held``; the rules are those of ``RedisBackend`` (the same decisions, so a
member sees the same frames whatever the backend).
"""

from __future__ import annotations

import logging
from typing import Any

from ..exceptions import BroadcastError
from .base import BaseBackend
from .history import HistoryPolicy, Recovery
from .protocol import envelope, group_json, recovery_event
from .redis_history import Held, HeldEntry, held_range, recovery

logger = logging.getLogger("django_ws")

#: Where a history group's deliveries are when its members joined without the broker.
UNKNOWN = ("", -1)
#: Where they are when a repair could not read the history: the next message
#: first tells the members ``recovered: false``.
LOST = ("", -2)
#: Reads of a history after a reconnect: the first may meet a pooled connection
#: to the server that went away, so one more try.
REPAIR_READ_ATTEMPTS = 2


class RepairingBackend(BaseBackend):
    """A backend that delivers history messages in offset order, gaps repaired."""

    #: Copies of messages are read on their own connection, maybe after a replay.
    late_deliveries = True

    def __init__(
        self, location: str | None = None, options: dict[str, Any] | None = None
    ) -> None:
        super().__init__(location, options)
        #: Per subscribed history group: the last ``(epoch, offset)`` delivered here.
        self.delivered: dict[str, tuple[str, int]] = {}

    async def read_held(self, group: str, policy: HistoryPolicy, first: int) -> Held:
        """Return ``group``'s position and its messages from offset ``first`` on.

        ``first`` 0 asks for the position only. Raise ``BroadcastError`` when the
        broker cannot answer.
        """
        raise NotImplementedError

    async def _read(self, group: str, policy: HistoryPolicy, first: int) -> Held:
        held = await self.read_held(group, policy, first)
        if group in self.groups:  # where this process's deliveries start
            self.delivered.setdefault(group, (held.epoch, held.offset))
        return held

    # Joining ----------------------------------------------------------------------

    async def recover(
        self, group: str, policy: HistoryPolicy, offered: tuple[str, int]
    ) -> Recovery:
        """Read what ``group`` holds after ``offered`` (unrecovered if the broker is away).

        A join never fails for the broker: without it, the member gets the offered
        position back, unrecovered, and live messages once the broker is back.
        """
        try:
            held = await self._read(group, policy, offered[1] + 1)
        except BroadcastError as error:
            logger.warning("Recovering the history of %r failed: %s", group, error)
            self._position_unknown(group)
            return Recovery(False, offered[0], offered[1])
        return recovery(group, policy, held, offered)

    async def join_floor(self, group: str) -> int:
        try:
            return await super().join_floor(group)
        except BroadcastError as error:
            logger.warning("Reading the position of %r failed: %s", group, error)
            self._position_unknown(group)
            return -1  # nothing to filter: every message once the broker is back

    def _position_unknown(self, group: str) -> None:
        if group in self.groups:
            self.delivered.setdefault(group, UNKNOWN)

    async def position(self, group: str) -> tuple[str, int]:
        held = await self._read(group, self.policy_of(group), 0)
        return held.epoch, held.offset

    def policy_of(self, group: str) -> HistoryPolicy:
        """Return ``group``'s history policy; ``ValueError`` for a group without."""
        policy = self.history_policy(group)
        if policy is None:
            raise ValueError(
                f"Group {group!r} keeps no history: add a pattern that matches it to "
                "WS_BROADCAST['HISTORY']."
            )
        return policy

    async def group_closed(self, group: str) -> None:
        self.delivered.pop(group, None)

    # Receiving ----------------------------------------------------------------------

    async def received_history(
        self,
        group: str,
        epoch: str,
        offset: int,
        data: str,
        exclude: frozenset[str],
    ) -> None:
        """Deliver a message the broker carried, repairing a gap before it."""
        last = self.delivered.get(group)
        if last == UNKNOWN:
            last = None  # the first message received sets where deliveries are
        elif last == LOST:  # a repair could not read what was missed: say so
            self._lost_history(group, epoch, offset - 1)
            last = None
        if last is not None and last[0] == epoch:
            if offset <= last[1]:
                return  # delivered already (by a repair)
            if offset > last[1] + 1:
                await self._repair(group, last[1], epoch, offset - 1)
        elif last is not None and offset > 1:
            await self._repair(group, 0, epoch, offset - 1)
        elif last is not None:
            self.restart_floors(group, epoch)  # a new epoch: offsets start over
        self._deliver_published(group, epoch, offset, data, exclude)

    def _deliver_published(
        self, group: str, epoch: str, offset: int, data: str, exclude: frozenset[str]
    ) -> None:
        self.delivered[group] = (epoch, offset)
        event = envelope(group_json(group), epoch, offset, data)
        self.deliver_history(group, offset, event, exclude)

    async def _read_for_repair(
        self, group: str, first: int
    ) -> tuple[HistoryPolicy, Held] | None:
        policy = self.history_policy(group)
        if policy is None or group not in self.groups:
            return None
        for attempt in range(1, REPAIR_READ_ATTEMPTS + 1):
            try:
                held = await self._read(group, policy, first)
            except BroadcastError as error:
                logger.warning(
                    "Reading the history of %r failed (try %d of %d): %s",
                    group,
                    attempt,
                    REPAIR_READ_ATTEMPTS,
                    error,
                )
                continue
            return (policy, held) if group in self.groups else None
        if group in self.groups:
            self.delivered[group] = LOST
        return None

    async def _repair(self, group: str, after: int, epoch: str, upto: int) -> None:
        """Deliver offsets ``after + 1 .. upto`` of ``epoch`` from ``group``'s history.

        When the history no longer holds all of them, the members get the
        ``recovered: false`` frame at ``(epoch, upto)`` instead.
        """
        found = await self._read_for_repair(group, after + 1)
        if found is None:
            if group in self.groups:
                self._lost_history(group, epoch, upto)
            return
        policy, held = found
        entries = None
        if held.epoch == epoch:
            entries = held_range(policy, held, after, upto)
        if entries is None:
            self._lost_history(group, epoch, upto)
            return
        if after == 0:
            self.restart_floors(group, epoch)  # a new epoch: offsets start over
        self._deliver_entries(group, epoch, entries)

    def _deliver_entries(self, group: str, epoch: str, entries: list[HeldEntry]) -> None:
        for offset, data, exclude, _ in entries:
            self._deliver_published(group, epoch, offset, data, exclude)

    def _lost_history(self, group: str, epoch: str, offset: int) -> None:
        logger.warning(
            "Group %r may have missed messages that its history does not hold; "
            "its members here get 'recovered: false'",
            group,
        )
        self.restart_floors(group, epoch)
        self.delivered[group] = (epoch, offset)
        # In order with the deliveries: a member still being replayed gets it
        # after its replay, and one whose replay reached ``offset`` needs none.
        event = recovery_event(group, False, epoch, offset, 0)
        self.deliver_history(group, offset, event)

    async def repair_after_reconnect(self) -> None:
        """Deliver what each subscribed history group got while the broker was away.

        When the group's epoch changed meanwhile (the history was lost or expired),
        what the old epoch got after the last delivery is unknown: the members get
        ``recovered: false`` at the new epoch's start, then its messages if the
        history holds them all.
        """
        for group, (epoch, offset) in list(self.delivered.items()):
            found = await self._read_for_repair(group, offset + 1)
            if found is None:
                continue
            policy, held = found
            if (epoch, offset) == UNKNOWN:
                self._lost_history(group, held.epoch, held.offset)
                continue
            if held.epoch == epoch:
                if held.offset > offset:
                    entries = held_range(policy, held, offset, held.offset)
                    if entries is None:
                        self._lost_history(group, epoch, held.offset)
                    else:
                        self._deliver_entries(group, epoch, entries)
                continue
            if offset > 0 and held.offset > 0:  # read from the epoch's start
                found = await self._read_for_repair(group, 1)
                if found is None:
                    continue
                policy, held = found
            entries = held_range(policy, held, 0, held.offset)
            if entries is None:
                self._lost_history(group, held.epoch, held.offset)
            else:
                self._lost_history(group, held.epoch, 0)
                self._deliver_entries(group, held.epoch, entries)
