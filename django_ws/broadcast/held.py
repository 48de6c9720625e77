"""What a backend read of a group's history: the position, the time, the entries.

Backend-neutral (no broker import): ``RepairingBackend`` (``repair.py``) decides
on these whatever broker filled them, and ``recovery`` answers a member's
``ws_since`` from one read, so a member gets the same frames from every backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from .history import Entry, HistoryPolicy, Recovery
from .protocol import envelope, group_json


def ttl_ms(policy: HistoryPolicy) -> int:
    """Return ``policy``'s TTL in whole milliseconds (at least 1), as brokers take it."""
    return max(1, int(policy.ttl * 1000))


#: A history entry: offset, data (encoded JSON), excluded ids, publish time in ms.
HeldEntry = tuple[int, str, frozenset[str], int]


@dataclass(frozen=True)
class Held:
    """A history read: the position, the broker's time, the entries asked for."""

    epoch: str
    offset: int
    now_ms: int
    entries: tuple[HeldEntry, ...]


def held_range(
    policy: HistoryPolicy, held: Held, after: int, upto: int
) -> list[HeldEntry] | None:
    """Return entries ``after + 1 .. upto`` if ``held`` has them all, else ``None``."""
    oldest = held.now_ms - ttl_ms(policy)
    wanted = [e for e in held.entries if e[0] <= upto and e[3] >= oldest]
    if [entry[0] for entry in wanted] != list(range(after + 1, upto + 1)):
        return None
    return wanted


def recovery(
    group: str, policy: HistoryPolicy, held: Held, offered: tuple[str, int]
) -> Recovery:
    """Return what ``held`` gives a member offering ``offered``: all or nothing."""
    epoch, offset = offered
    current = held.offset
    if epoch != held.epoch or offset > current:
        return Recovery(False, held.epoch, current)
    if offset == current:
        return Recovery(True, held.epoch, offset)
    kept = held_range(policy, held, offset, current)
    if kept is None:
        return Recovery(False, held.epoch, current)  # part of the gap is gone
    encoded = group_json(group)
    return Recovery(
        True,
        held.epoch,
        offset,
        tuple(
            Entry(number, envelope(encoded, held.epoch, number, data), time / 1000)
            for number, data, _, time in kept
        ),
    )
