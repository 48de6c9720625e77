"""The in-process backend: the default, with no dependencies."""

from __future__ import annotations

import asyncio
from typing import Any

from .base import BaseBackend, Presence, user_of


class MemoryBackend(BaseBackend):
    """Groups live in this process only; a broadcast is a loop over local members."""

    async def publish(self, group: str, message: dict[str, Any], exclude: frozenset[str]) -> None:
        self.deliver(group, message, exclude)

    def publish_sync(self, group: str, message: dict[str, Any], exclude: frozenset[str]) -> None:
        loop = self._loop
        if loop is None or loop.is_closed() or group not in self.groups:
            return  # no member was ever in this process: nothing to deliver
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self.deliver(group, message, exclude)
        else:
            loop.call_soon_threadsafe(self.deliver, group, message, exclude)

    async def presence(self, group: str) -> Presence:
        members = self.groups.get(group, ())
        users = [user for user in map(user_of, members) if user is not None]
        return Presence(count=len(members), users=users)
