"""Where a process keeps what other processes must see: limit counts and snapshots.

A store shares, among the processes that share a broadcast backend, how many
sockets each user and client address has open (for the connection limits) and
each process's snapshot (for the admin live view), each with a TTL so that a
dead process's share drops out. ``MemoryStore`` serves ``MemoryBackend`` (one
process); ``redis_store.RedisStore`` serves ``RedisBackend``;
``postgres_store.PostgresStore`` serves ``PostgresBackend``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

#: A limit to check: (kind ``"user"`` or ``"ip"``, the user's pk or the address, max).
LimitKey = tuple[str, str, int]


class OperationsStore(Protocol):
    """Counts and snapshots shared by the processes of one broadcast backend."""

    async def acquire(self, keys: Sequence[LimitKey]) -> LimitKey | None:
        """Count one more socket under every key, or none: return the key that is full."""

    async def release(self, keys: Sequence[LimitKey]) -> None:
        """Count one socket less under every key."""

    async def refresh(self, counts: dict[tuple[str, str], int]) -> None:
        """Restate this process's counts and keep them alive for another TTL."""

    async def write_snapshot(self, snapshot: dict[str, Any]) -> None:
        """Store this process's snapshot for a TTL."""

    def read_snapshots(self) -> list[dict[str, Any]]:
        """Return the snapshots of every live process (called from sync views)."""

    async def close(self) -> None:
        """Drop this process's share and the connections."""


class MemoryStore:
    """The store of a single process: plain dicts under a lock, TTL by the clock."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._snapshots: dict[str, tuple[float, dict[str, Any]]] = {}

    async def acquire(self, keys: Sequence[LimitKey]) -> LimitKey | None:
        with self._lock:
            for kind, value, limit in keys:
                if self._counts.get((kind, value), 0) >= limit:
                    return (kind, value, limit)
            for kind, value, _ in keys:
                self._counts[(kind, value)] = self._counts.get((kind, value), 0) + 1
        return None

    async def release(self, keys: Sequence[LimitKey]) -> None:
        with self._lock:
            for kind, value, _ in keys:
                left = self._counts.get((kind, value), 0) - 1
                if left > 0:
                    self._counts[(kind, value)] = left
                else:
                    self._counts.pop((kind, value), None)

    async def refresh(self, counts: dict[tuple[str, str], int]) -> None:
        with self._lock:
            self._counts = {key: count for key, count in counts.items() if count > 0}

    async def write_snapshot(self, snapshot: dict[str, Any]) -> None:
        with self._lock:
            self._snapshots[snapshot["process"]] = (time.monotonic() + self.ttl, snapshot)

    def read_snapshots(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        with self._lock:
            for process, (deadline, _) in list(self._snapshots.items()):
                if deadline < now:
                    del self._snapshots[process]
            return [snapshot for _, snapshot in self._snapshots.values()]

    async def close(self) -> None:
        from ..connection_ids import process_id

        with self._lock:
            self._snapshots.pop(process_id(), None)
