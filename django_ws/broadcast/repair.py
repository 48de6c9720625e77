"""Server-side repair of a history group's gaps, for every backend that carries messages.

A backend whose broker can skip messages (a lost notification, a reconnect, a
failover, a broker restart) tracks per subscribed history group the last
``(epoch, offset)`` it delivered here. A message that skips offsets makes it read
the missing range from the history first; a range the history lost gives the
members the ``recovered: false`` frame instead (``docs/protocol.md``), in order
with the deliveries. After a reconnect every subscribed group is read at once
(``read_held_many``), then those whose epoch changed once more from the epoch's
start; a group whose history went back below what was delivered here (a failover
to a replica that lacked the last writes) first gets a new epoch
(``reset_if_behind``).

``RepairingBackend`` holds every rule, so a member sees the same frames whatever
the backend; ``RedisBackend`` and ``PostgresBackend`` provide only the reads
(``read_held``, maybe a batched ``read_held_many``) and ``reset_if_behind``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ..exceptions import BroadcastError
from .base import BaseBackend
from .held import Held, HeldEntry, held_range, recovery
from .history import HistoryPolicy, Recovery
from .protocol import envelope, group_json, recovery_event

logger = logging.getLogger("django_ws")

#: Where a history group's deliveries are when its members joined without the broker.
UNKNOWN = ("", -1)
#: Where they are when a repair could not read the history: the next message
#: first tells the members ``recovered: false``.
LOST = ("", -2)
#: Reads of a history after a reconnect: the first may meet a pooled connection
#: to the server that went away ("Connection closed by server"), so one more try.
REPAIR_READ_ATTEMPTS = 2

#: A read request: ``(group, policy, first offset wanted)`` (0: the position only).
ReadRequest = tuple[str, HistoryPolicy, int]


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

    # What a backend provides ----------------------------------------------------

    async def read_held(self, group: str, policy: HistoryPolicy, first: int) -> Held:
        """Return ``group``'s position and its messages from offset ``first`` on.

        ``first`` 0 asks for the position only. Creates the group's epoch when it
        has none. Raise ``BroadcastError`` when the broker cannot answer.
        """
        raise NotImplementedError

    async def read_held_many(self, requests: list[ReadRequest]) -> list[Held | None]:
        """Read several histories; ``None`` for each read that failed alone.

        Override to read them in one round trip; raise ``BroadcastError`` when the
        broker is away for all of them. This default reads them one by one.
        """
        found: list[Held | None] = []
        for group, policy, first in requests:
            try:
                found.append(await self.read_held(group, policy, first))
            except BroadcastError as error:
                logger.warning("Reading the history of %r failed: %s", group, error)
                found.append(None)
        return found

    async def reset_if_behind(self, rewound: list[tuple[str, str, int]]) -> None:
        """Drop the history of each ``(group, epoch, offset)`` still at ``epoch`` below ``offset``.

        Called when a group's history went back below what this process
        delivered (a failover lost acknowledged writes): without a new epoch the
        next messages would reuse offsets that members saw, and be dropped as
        duplicates. The next read then starts a new epoch. A backend whose
        history cannot go back may leave this as is; raise ``BroadcastError`` when
        the broker cannot answer (the members then get ``recovered: false``).
        """

    # Reading --------------------------------------------------------------------

    def _started_at(self, group: str, held: Held) -> None:
        if group in self.groups:  # where this process's deliveries start
            self.delivered.setdefault(group, (held.epoch, held.offset))

    async def _read(self, group: str, policy: HistoryPolicy, first: int) -> Held:
        held = await self.read_held(group, policy, first)
        self._started_at(group, held)
        return held

    async def _read_many(self, requests: list[ReadRequest]) -> list[Held | None]:
        found = await self.read_held_many(requests)
        for (group, _, _), held in zip(requests, found):
            if held is not None:
                self._started_at(group, held)
        return found

    # Joining --------------------------------------------------------------------

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
            self.events.failed("recover")
            self._position_unknown(group)
            return Recovery(False, offered[0], offered[1])
        return recovery(group, policy, held, offered)

    async def join_floor(self, group: str) -> int:
        _, offset = await self.join_position(group)
        return offset

    async def join_position(self, group: str) -> tuple[str | None, int]:
        try:
            return await self.position(group)
        except BroadcastError as error:
            logger.warning("Reading the position of %r failed: %s", group, error)
            self.events.failed("position")
            self._position_unknown(group)
            return None, -1  # nothing to filter: every message once the broker is back

    def _position_unknown(self, group: str) -> None:
        # Members joined without a position: once the subscription is back,
        # what was published before it is unknown to them.
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

    # Receiving ------------------------------------------------------------------

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
        self, wanted: list[tuple[str, int]]
    ) -> list[tuple[HistoryPolicy, Held] | None]:
        """Read each ``(group, first offset)`` of ``wanted`` for a repair, at once.

        Gives ``None`` for a group that left or keeps no history, and for one
        whose read failed twice: then its next message tells its members
        ``recovered: false``.
        """
        results: list[tuple[HistoryPolicy, Held] | None] = [None for _ in wanted]
        policies = [self.history_policy(group) for group, _ in wanted]
        pending = [
            index
            for index, (group, _) in enumerate(wanted)
            if policies[index] is not None and group in self.groups
        ]
        for attempt in range(1, REPAIR_READ_ATTEMPTS + 1):
            if not pending:
                break
            requests = []
            for index in pending:
                policy = policies[index]
                assert policy is not None
                requests.append((wanted[index][0], policy, wanted[index][1]))
            try:
                helds = await self._read_many(requests)
            except BroadcastError as error:
                logger.warning(
                    "Reading %d group histories failed (try %d of %d): %s",
                    len(requests),
                    attempt,
                    REPAIR_READ_ATTEMPTS,
                    error,
                )
                self.events.failed("history_read")
                continue
            failed = []
            for index, held in zip(pending, helds):
                policy = policies[index]
                if held is None:
                    self.events.failed("history_read")
                    failed.append(index)
                elif policy is not None and wanted[index][0] in self.groups:
                    results[index] = (policy, held)
            pending = failed
        for index in pending:
            group = wanted[index][0]
            if group in self.groups:
                self.delivered[group] = LOST
        return results

    async def _repair(self, group: str, after: int, epoch: str, upto: int) -> None:
        """Deliver offsets ``after + 1 .. upto`` of ``epoch`` from ``group``'s history.

        When the history no longer holds all of them, the members get the
        ``recovered: false`` frame at ``(epoch, upto)`` instead.
        """
        (found,) = await self._read_for_repair([(group, after + 1)])
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
        self.events.gap("repaired")

    def _deliver_entries(self, group: str, epoch: str, entries: list[HeldEntry]) -> None:
        for offset, data, exclude, _ in entries:
            self._deliver_published(group, epoch, offset, data, exclude)

    def _lost_history(self, group: str, epoch: str, offset: int) -> None:
        logger.warning(
            "Group %r may have missed messages that its history does not hold; "
            "its members here get 'recovered: false'",
            group,
        )
        self.events.gap("lost")
        self.restart_floors(group, epoch)
        self.delivered[group] = (epoch, offset)
        # In order with the deliveries: a member still being replayed gets it
        # after its replay, and one whose replay reached ``offset`` needs none.
        event = recovery_event(group, False, epoch, offset, 0)
        self.deliver_history(group, offset, event)

    # After a reconnect ----------------------------------------------------------

    async def repair_after_reconnect(self, groups: Iterable[str] | None = None) -> None:
        """Deliver what each subscribed history group got while the broker was away.

        ``groups`` (all of them by default) are read at once (``read_held_many``),
        and those whose epoch changed in a second read. When the epoch changed
        meanwhile (the broker restarted empty, or the history expired), what the
        old epoch got after the last delivery is unknown: the members get
        ``recovered: false`` at the new epoch's start, then its messages if the
        history holds them all.
        """
        chosen = None if groups is None else set(groups)
        positions = [
            (group, position)
            for group, position in self.delivered.items()
            if chosen is None or group in chosen
        ]
        reads = await self._read_for_repair(
            [(group, offset + 1) for group, (_, offset) in positions]
        )
        from_start, rewound = [], []
        for (group, (epoch, offset)), found in zip(positions, reads):
            if found is None:
                continue
            policy, held = found
            if (epoch, offset) == UNKNOWN:
                self._lost_history(group, held.epoch, held.offset)
            elif held.epoch == epoch:
                if held.offset > offset:
                    entries = held_range(policy, held, offset, held.offset)
                    if entries is None:
                        self._lost_history(group, epoch, held.offset)
                    else:
                        self._deliver_entries(group, epoch, entries)
                        self.events.gap("repaired")
                elif held.offset < offset:  # gone back: a failover lost writes
                    rewound.append((group, epoch, offset))
            elif offset > 0 and held.offset > 0:  # read from the epoch's start
                from_start.append(group)
            else:
                self._deliver_new_epoch(group, policy, held)
        if rewound:
            await self._start_over(rewound)
            from_start += [group for group, _, _ in rewound]
        if from_start:
            reads = await self._read_for_repair([(group, 1) for group in from_start])
            for group, found in zip(from_start, reads):
                if found is not None:
                    self._deliver_new_epoch(group, *found)

    async def _start_over(self, rewound: list[tuple[str, str, int]]) -> None:
        """Give a new epoch to groups whose offsets went back below ours."""
        logger.warning(
            "The history of %s went back below what was delivered here (a failover "
            "lost writes); starting a new epoch",
            ", ".join(repr(group) for group, _, _ in rewound),
        )
        try:
            await self.reset_if_behind(rewound)
        except BroadcastError as error:  # the re-read finds the old epoch: lost
            logger.warning("Starting a new epoch failed: %s", error)
            self.events.failed("history_reset")

    def _deliver_new_epoch(self, group: str, policy: HistoryPolicy, held: Held) -> None:
        entries = held_range(policy, held, 0, held.offset)
        if entries is None:
            self._lost_history(group, held.epoch, held.offset)
        else:
            self._lost_history(group, held.epoch, 0)
            self._deliver_entries(group, held.epoch, entries)
