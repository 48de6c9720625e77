"""Sharded pub/sub on a Redis Cluster: one subscription connection per master.

In a Redis Cluster a plain PUBLISH is copied to every node; SPUBLISH goes only
to the shard that owns the channel's slot, and only that shard's subscribers
(SSUBSCRIBE) get it. So ``RedisBackend`` with ``OPTIONS["CLUSTER"]`` publishes
with SPUBLISH, and this module keeps, per master that owns a subscribed group's
channel, one connection that SSUBSCRIBEs to those channels and one task that
reads it (a ``Shard``).

Channels move: a slot migration makes the old owner push ``sunsubscribe`` for
the slot's channels, and a master that dies takes its connection with it until a
replica takes over. Either way the channels become *homeless*: the router task
refreshes the slot map (with capped, jittered backoff while it keeps failing),
places each channel on the shard of its current owner, and that shard's reader,
on reading the SSUBSCRIBE confirmations, asks the backend to repair those groups
from their history (one pipelined read for the batch) before it delivers any
newer message of theirs. Every delivery of a group happens on the reader task of
the shard that carries it, so a group's messages and repairs never interleave.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

import redis.asyncio as async_redis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError

logger = logging.getLogger("django_ws")

#: Errors that mean "this node is not reachable right now".
UNREACHABLE = (RedisError, OSError, asyncio.TimeoutError)


class ShardListener(Protocol):
    """What the shards tell the backend."""

    async def shard_message(self, channel: bytes, payload: bytes) -> None:
        """A message was published to ``channel``."""

    async def shard_resubscribed(self, channels: list[bytes]) -> None:
        """``channels`` are subscribed again after a move: repair their groups."""

    def shard_connected(self, name: str) -> None:
        """A shard's connection is up (Redis may have lost presence: rewrite it)."""

    def shard_lost(self, name: str, error: BaseException) -> None:
        """A shard's connection failed; its channels are being placed again."""

    def shard_failed(self, name: str) -> None:
        """A shard's reader failed unexpectedly (logged); it is started again."""


def by_slot(channels: set[bytes]) -> list[list[bytes]]:
    """Group ``channels`` by hash slot: one SSUBSCRIBE may not span slots."""
    slots: defaultdict[int, list[bytes]] = defaultdict(list)
    for channel in sorted(channels):
        slots[key_slot(channel)].append(channel)
    return list(slots.values())


class Shard:
    """One master's subscription connection and the channels it carries."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name, self.host, self.port = name, host, port
        #: Channels this shard subscribes (or is subscribing) to.
        self.channels: set[bytes] = set()
        #: Channels whose SSUBSCRIBE confirmation has not been read yet.
        self.awaiting: set[bytes] = set()
        #: Channels whose groups are repaired from history once confirmed.
        self.repair: set[bytes] = set()
        self.pubsub: Any = None
        self.task: asyncio.Task[None] | None = None
        self.closing = False

    @property
    def connected(self) -> bool:
        return self.pubsub is not None

    def __repr__(self) -> str:
        return f"<Shard {self.name} channels={len(self.channels)}>"


class ShardedSubscriptions:
    """Every shard's subscription connection of one process, and the router.

    ``cluster`` is the backend's ``RedisCluster`` client, used for its slot map
    only; ``connection_options`` are the keyword arguments of a node connection
    (credentials, TLS, timeouts) without host and port.
    """

    def __init__(
        self,
        listener: ShardListener,
        cluster: Callable[[], async_redis.RedisCluster],
        connection_options: dict[str, Any],
        *,
        timeout: float,
        heartbeat: float,
        reconnect_min: float,
        reconnect_max: float,
    ) -> None:
        self.listener = listener
        self._cluster = cluster
        self.connection_options = connection_options
        self.timeout = timeout
        self.heartbeat = heartbeat
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.shards: dict[str, Shard] = {}
        #: Channels that need a shard, and whether to repair them once placed.
        self.homeless: dict[bytes, bool] = {}
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._wake = asyncio.Event()
        self._refresh = False
        self._failures = 0
        self._router: asyncio.Task[None] | None = None

    # Lifecycle ----------------------------------------------------------------

    def start(self) -> None:
        """Start the router (idempotent)."""
        if self._router is None:
            self._router = asyncio.get_running_loop().create_task(
                self._route_forever(), name="django_ws redis cluster router"
            )

    async def stop(self) -> None:
        """Stop the router and every shard, and close their connections."""
        tasks = [self._router] if self._router is not None else []
        for shard in list(self.shards.values()):
            shard.closing = True
            if shard.task is not None:
                tasks.append(shard.task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.shards.clear()
        self._router = None

    def channels(self) -> set[bytes]:
        """Return every channel subscribed or waiting for a shard."""
        placed = {c for shard in self.shards.values() for c in shard.channels}
        return placed | set(self.homeless)

    def shard_of(self, channel: bytes) -> Shard | None:
        """Return the shard that carries ``channel``, if it is placed."""
        for shard in self.shards.values():
            if channel in shard.channels:
                return shard
        return None

    # Subscribing --------------------------------------------------------------

    async def subscribe(self, channel: bytes) -> None:
        """Subscribe to ``channel`` on its owner; return once it is confirmed.

        The caller bounds the wait; if it gives up, the channel stays placed (or
        homeless) and is subscribed as soon as its shard can.
        """
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, []).append(waiter)
        try:
            # Shielded: a caller that gives up must not leave the channel half
            # placed (neither on a shard nor homeless, so never subscribed).
            await asyncio.shield(self._place(channel, repair=False))
            await waiter
        finally:
            waiting = self._waiters.get(channel, [])
            if waiter in waiting:
                waiting.remove(waiter)
            if not waiting:
                self._waiters.pop(channel, None)

    async def unsubscribe(self, channel: bytes) -> None:
        """Stop receiving ``channel``; a shard left with no channel closes."""
        self.homeless.pop(channel, None)
        shard = self.shard_of(channel)
        if shard is None:
            return
        shard.channels.discard(channel)
        shard.awaiting.discard(channel)
        shard.repair.discard(channel)
        if not shard.channels:
            self._close_shard(shard)
        elif shard.connected:
            await shard.pubsub.sunsubscribe(channel)

    def _close_shard(self, shard: Shard) -> None:
        shard.closing = True
        if self.shards.get(shard.name) is shard:
            del self.shards[shard.name]
        if shard.task is not None and shard.task is not asyncio.current_task():
            shard.task.cancel()

    async def _owner(self, channel: bytes) -> Any:
        cluster = self._cluster()
        if not cluster.nodes_manager.slots_cache:
            await cluster.initialize()
        return cluster.nodes_manager.get_node_from_slot(key_slot(channel))

    async def _place(self, channel: bytes, *, repair: bool) -> None:
        """Put ``channel`` on the shard of its owner (homeless if unknown)."""
        try:
            node = await self._owner(channel)
        except (*UNREACHABLE, RedisClusterException, IndexError) as error:
            logger.debug("Finding the owner of %r failed: %r", channel, error)
            self._make_homeless([channel], repair, refresh=True)
            return
        if self.homeless.pop(channel, None):
            repair = True
        shard = self.shards.get(node.name)
        if shard is None or shard.closing:
            shard = self.shards[node.name] = Shard(node.name, node.host, int(node.port))
            shard.task = asyncio.get_running_loop().create_task(
                self._run_shard(shard), name=f"django_ws redis shard {node.name}"
            )
        shard.channels.add(channel)
        if repair:
            shard.repair.add(channel)
        if shard.connected and channel not in shard.awaiting:
            shard.awaiting.add(channel)
            try:
                await asyncio.wait_for(shard.pubsub.ssubscribe(channel), self.timeout)
            except UNREACHABLE as error:  # the reader sees it too and re-places
                logger.debug("SSUBSCRIBE %r failed: %r", channel, error)

    def _make_homeless(
        self, channels: list[bytes], repair: bool, *, refresh: bool
    ) -> None:
        for channel in channels:
            self.homeless[channel] = self.homeless.get(channel, False) or repair
        if refresh:
            self._refresh = True
        self._wake.set()

    def _confirmed(self, channel: bytes) -> None:
        for waiter in self._waiters.pop(channel, ()):
            if not waiter.done():
                waiter.set_result(None)

    # The router ---------------------------------------------------------------

    async def _route_forever(self) -> None:
        """Place homeless channels, refreshing the slot map with backoff."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.homeless:
                continue
            if self._refresh:
                delay = min(self.reconnect_max, self.reconnect_min * 2**self._failures)
                self._failures += 1
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                try:
                    await asyncio.wait_for(
                        self._cluster().nodes_manager.initialize(), self.timeout * 2
                    )
                except (*UNREACHABLE, RedisClusterException) as error:
                    logger.debug("Refreshing the Redis Cluster slots failed: %r", error)
                    self._wake.set()
                    continue
                except Exception:
                    logger.exception("Refreshing the Redis Cluster slots failed")
                    self._wake.set()
                    continue
                self._refresh = False
            for channel, repair in list(self.homeless.items()):
                if channel not in self.homeless:
                    continue
                try:
                    await self._place(channel, repair=repair)
                except Exception:  # the router must outlive any one placement
                    logger.exception("Placing Redis channel %r failed", channel)
                    self._make_homeless([channel], repair, refresh=True)

    # A shard's reader ---------------------------------------------------------

    async def _run_shard(self, shard: Shard) -> None:
        client = async_redis.Redis(
            host=shard.host,
            port=shard.port,
            retry=AsyncRetry(NoBackoff(), 0),
            **self.connection_options,
        )
        pubsub = client.pubsub()
        lost: BaseException | None = None
        try:
            connecting = pubsub.connect()  # type: ignore[no-untyped-call,unused-ignore]
            await asyncio.wait_for(connecting, self.timeout)
            shard.pubsub = pubsub
            shard.awaiting |= shard.channels
            for batch in by_slot(shard.channels):
                await asyncio.wait_for(pubsub.ssubscribe(*batch), self.timeout)
            self._failures = 0
            self.listener.shard_connected(shard.name)
            await self._read(shard, pubsub)
        except UNREACHABLE as error:
            lost = error
        except asyncio.CancelledError:
            if not shard.closing:
                lost = ConnectionError("cancelled")
            raise
        except Exception as error:
            logger.exception("The Redis shard reader %s failed", shard.name)
            self.listener.shard_failed(shard.name)
            lost = error
        finally:
            shard.pubsub = None
            if self.shards.get(shard.name) is shard:
                del self.shards[shard.name]
            if not shard.closing and shard.channels:
                self.listener.shard_lost(
                    shard.name, lost or ConnectionError("connection closed")
                )
                self._make_homeless(list(shard.channels), True, refresh=True)
            try:
                await asyncio.wait_for(client.aclose(), self.timeout)
            except Exception as error:  # noqa: BLE001 - closing a broken connection
                logger.debug("Closing the shard connection failed: %r", error)

    async def _next(self, pubsub: Any, timeout: float) -> dict[str, Any] | None:
        message: dict[str, Any] | None = await pubsub.get_message(timeout=timeout)
        return message

    async def _read(self, shard: Shard, pubsub: Any) -> None:
        pinged = False
        while True:
            message = await self._next(
                pubsub, self.timeout if pinged else self.heartbeat
            )
            if message is None:
                if pinged:
                    raise ConnectionError(
                        f"no answer to PING within {self.timeout:g} s"
                    )
                await asyncio.wait_for(pubsub.ping(), self.timeout)
                pinged = True
                continue
            pinged = False
            batch = self._handle(shard, message)
            if message["type"] == "smessage":
                await self.listener.shard_message(message["channel"], message["data"])
            elif batch:
                await self._repair_batch(shard, pubsub, batch)

    def _handle(self, shard: Shard, message: dict[str, Any]) -> list[bytes]:
        """Keep the books of a subscription message; return channels to repair."""
        kind, channel = message["type"], message["channel"]
        if kind == "ssubscribe":
            shard.awaiting.discard(channel)
            self._confirmed(channel)
            if channel in shard.repair and channel in shard.channels:
                shard.repair.discard(channel)
                return [channel]
        elif kind == "sunsubscribe":
            if channel in shard.channels and channel not in shard.awaiting:
                # Not asked for: the slot moved to another master.
                logger.info(
                    "Redis moved channel %r away from %s; subscribing on its new "
                    "owner",
                    channel,
                    shard.name,
                )
                shard.channels.discard(channel)
                shard.repair.discard(channel)
                self._make_homeless([channel], True, refresh=True)
                if not shard.channels:
                    self._close_shard(shard)
        return []

    async def _repair_batch(
        self, shard: Shard, pubsub: Any, channels: list[bytes]
    ) -> None:
        """Wait for the other pending confirmations, then repair all at once.

        Messages of already confirmed channels read meanwhile wait until the
        repair is delivered: they are newer than what it reads.
        """
        held: list[dict[str, Any]] = []
        while shard.awaiting & shard.repair:
            message = await self._next(pubsub, self.timeout)
            if message is None:
                raise ConnectionError(
                    f"no SSUBSCRIBE confirmation within {self.timeout:g} s"
                )
            channels += self._handle(shard, message)
            if message["type"] == "smessage":
                held.append(message)
        await self.listener.shard_resubscribed(channels)
        for message in held:
            await self.listener.shard_message(message["channel"], message["data"])

