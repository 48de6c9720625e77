"""Writing a process's presence to a shared broker: coalesced, one writer at a time.

``RedisBackend`` and ``PostgresBackend`` keep, per group, one entry per process
(its member count and users) in the broker. Joins and leaves come in bursts, so
each backend marks the groups whose membership changed (``_dirty``) and one
writer task per process writes them all, again and again until nothing is left;
``join`` waits for that write, bounded, so ``presence`` right after it counts the
new member. The backend provides ``_write_presence``; this mixin owns the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def bounded(awaitable: Awaitable[T], seconds: float) -> T:
    """Await ``awaitable`` for at most ``seconds`` (``asyncio.TimeoutError`` after)."""
    return await asyncio.wait_for(awaitable, seconds)


class PresenceWrites:
    """The coalescing presence writer shared by the broker backends."""

    #: Bounds every broker call, in seconds (the backend's ``TIMEOUT``).
    timeout: float
    #: The event loop the backend's connections belong to, once started.
    _bound_loop: asyncio.AbstractEventLoop | None
    #: The writer task under way, if any.
    _writer: asyncio.Task[None] | None
    #: Groups whose local membership changed since their entry was last written.
    _dirty: set[str]

    async def _write_presence(self, *, leaving: bool = False) -> None:
        """Write this process's entry of every group in ``_dirty`` (the backend's part)."""
        raise NotImplementedError

    def _presence_changed(self, group: str) -> None:
        self._dirty.add(group)
        self._start_presence_write()

    def _start_presence_write(self) -> asyncio.Task[None] | None:
        """Start writing the changed groups' presence unless a write is under way."""
        if self._bound_loop is None or self._bound_loop.is_closed():
            return None
        if self._dirty and (self._writer is None or self._writer.done()):
            self._writer = self._bound_loop.create_task(self._write_presence())
        return self._writer

    async def _presence_written(self) -> None:
        """Wait (bounded) until the changed groups' presence is in the broker."""
        writer = self._start_presence_write()
        if writer is None or writer.done():
            return
        try:
            await bounded(asyncio.shield(writer), self.timeout * 2)
        except asyncio.TimeoutError:
            pass
