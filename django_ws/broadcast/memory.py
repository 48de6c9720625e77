"""The in-process backend: the default, with no dependencies."""

from __future__ import annotations

from typing import Any

from .base import BaseBackend, Presence, local_users


class MemoryBackend(BaseBackend):
    """Groups live in this process only; a broadcast is a loop over local members.

    Use it with a single server process (``manage.py runserver``, one uvicorn
    worker). With several processes each sees only its own members: use
    ``RedisBackend`` there.
    """

    async def publish(
        self, group: str, message: dict[str, Any], exclude: frozenset[str]
    ) -> None:
        self.deliver_local(group, message, exclude)

    def publish_sync(
        self, group: str, message: dict[str, Any], exclude: frozenset[str]
    ) -> None:
        self.deliver_local(group, message, exclude)

    async def presence(self, group: str) -> Presence:
        members = self.groups.get(group, ())
        return Presence(count=len(members), users=local_users(members))
