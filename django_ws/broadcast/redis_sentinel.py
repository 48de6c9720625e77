"""Redis Sentinel: clients of whichever server the sentinels name master now.

With ``OPTIONS["SENTINELS"]`` and ``OPTIONS["SERVICE"]``, ``RedisBackend`` asks the
sentinels for the service's master whenever it opens a connection (redis-py's
``SentinelConnectionPool``). Nothing else changes: the reader's connection breaks
when the master dies, it reconnects with backoff, and the sentinels then name the
promoted replica, whose history was replicated; the reader repairs from it as
after any reconnect. Each client owns its sentinel connections and closes them
with itself, so a reconnect leaks nothing.
"""

from __future__ import annotations

from typing import Any

import redis as sync_redis
import redis.asyncio as async_redis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import NoBackoff
from redis.retry import Retry as SyncRetry
from redis.sentinel import Sentinel as SyncSentinel


class AsyncMaster(async_redis.Redis):
    """An asyncio client of the service's master that closes its sentinels too."""

    sentinels: AsyncSentinel | None = None

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        if self.sentinels is not None:
            await self.sentinels.aclose()


class SyncMaster(sync_redis.Redis):
    """A sync client of the service's master that closes its sentinels too."""

    sentinels: SyncSentinel | None = None

    def close(self) -> None:
        super().close()
        if self.sentinels is not None:
            for sentinel in self.sentinels.sentinels:
                sentinel.close()


def _sentinel_options(options: dict[str, Any]) -> dict[str, Any]:
    """Talk to the sentinels with the same timeouts, without the master's auth."""
    return {k: v for k, v in options.items() if k.startswith("socket_")}


def async_master(
    sentinels: list[tuple[str, int]], service: str, options: dict[str, Any]
) -> AsyncMaster:
    """Return an asyncio client of ``service``'s current master."""
    # Typed in redis-py 8.2, not in 8.1: hence the ignores.
    manager = AsyncSentinel(  # type: ignore[no-untyped-call,unused-ignore]
        sentinels, sentinel_kwargs=_sentinel_options(options)
    )
    client: AsyncMaster = manager.master_for(
        service, redis_class=AsyncMaster, retry=AsyncRetry(NoBackoff(), 0), **options
    )
    client.sentinels = manager
    return client


def sync_master(
    sentinels: list[tuple[str, int]], service: str, options: dict[str, Any]
) -> SyncMaster:
    """Return a sync client of ``service``'s current master."""
    manager = SyncSentinel(  # type: ignore[no-untyped-call,unused-ignore]
        sentinels, sentinel_kwargs=_sentinel_options(options)
    )
    retry = SyncRetry(NoBackoff(), 0)
    client: SyncMaster = manager.master_for(  # type: ignore[no-untyped-call,unused-ignore]
        service, redis_class=SyncMaster, retry=retry, **options
    )
    client.sentinels = manager
    return client
