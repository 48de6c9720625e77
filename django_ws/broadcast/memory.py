"""The in-process backend: the default, with no dependencies."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from .base import BaseBackend, Presence, local_users
from .history import HistoryPolicy, HistoryStore, Recovery
from .protocol import envelope, group_json


class MemoryBackend(BaseBackend):
    """Groups live in this process only; a broadcast is a loop over local members.

    Use it with a single server process (``manage.py runserver``, one uvicorn
    worker). With several processes each sees only its own members: use
    ``RedisBackend`` there. Group history lives in this process too: a new
    process starts every group at a new epoch.
    """

    def __init__(
        self, location: str | None = None, options: dict[str, Any] | None = None
    ) -> None:
        super().__init__(location, options)
        self.store = HistoryStore(time.monotonic)
        # Taken by every thread that broadcasts to a group with history: an
        # offset and its place in the loop's queue are given together.
        self._history_lock = threading.Lock()

    async def publish(
        self, group: str, message: dict[str, Any], exclude: frozenset[str]
    ) -> None:
        policy = self.history_policy(group)
        if policy is None:
            self.deliver_local(group, message, exclude)
        else:
            self._publish_history(group, policy, message, exclude)

    def publish_sync(
        self, group: str, message: dict[str, Any], exclude: frozenset[str]
    ) -> None:
        policy = self.history_policy(group)
        if policy is None:
            self.deliver_local(group, message, exclude)
        else:
            self._publish_history(group, policy, message, exclude)

    def _publish_history(
        self,
        group: str,
        policy: HistoryPolicy,
        message: dict[str, Any],
        exclude: frozenset[str],
    ) -> None:
        encoded_group, data_text = group_json(group), message["text"]

        def build(epoch: str, offset: int) -> dict[str, Any]:
            return envelope(encoded_group, epoch, offset, data_text)

        with self._history_lock:
            entry = self.store.append(group, policy, build)
            loop = self._loop
            if loop is None:
                return  # nobody ever joined in this process
            # Always through the loop's FIFO queue, even on the loop's own thread,
            # so that members get messages in offset order whichever thread sent.
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            schedule = loop.call_soon if running is loop else loop.call_soon_threadsafe
            try:
                schedule(self.deliver_history, group, entry.offset, entry.event, exclude)
            except RuntimeError:  # the loop is closed: its members are gone
                pass

    async def recover(
        self, group: str, policy: HistoryPolicy, offered: tuple[str, int]
    ) -> Recovery:
        with self._history_lock:
            log = self.store.log(group, policy)
            return log.since(offered[0], offered[1], self.store.clock())

    def position_sync(self, group: str) -> tuple[str, int]:
        policy = self.history_policy(group)
        if policy is None:
            raise ValueError(
                f"Group {group!r} keeps no history: add a pattern that matches it to "
                "WS_BROADCAST['HISTORY']."
            )
        with self._history_lock:
            log = self.store.log(group, policy)
            return log.epoch, log.offset

    async def presence(self, group: str) -> Presence:
        members = self.groups.get(group, ())
        return Presence(count=len(members), users=local_users(members))
