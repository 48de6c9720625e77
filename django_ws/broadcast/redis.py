"""The Redis backend: one PUBLISH per broadcast, fan-out inside each process.

Every group is a Redis channel (``<PREFIX>:g:<group>``). A process SUBSCRIBEs only
to the groups it has members in, on one pub/sub connection read by one task, and
hands each message to its members itself; so a broadcast costs Redis one PUBLISH
and one copy per subscribed process, whatever the number of members (channels_redis
instead does work per member channel). The message is a small header (the
publishing process, the excluded connection ids) and the frame, encoded once.

Members in the publishing process get a broadcast at once, without the round trip,
so they keep getting local broadcasts while Redis is away. Delivery is at most
once and in order per publisher; while Redis is unreachable other processes miss
broadcasts, and ``broadcast`` raises ``BroadcastError`` within ``TIMEOUT``.

Presence: each process keeps one key per group it has members in
(``<PREFIX>:p:<group>:<process>``, its member count and users) with a TTL of
``PRESENCE_TTL`` seconds, rewritten on join and leave and every third of the TTL,
and indexed by a set per group. A process that dies stops refreshing its keys, so
its members leave the count within ``PRESENCE_TTL`` seconds.

With ``OPTIONS["CLUSTER"]`` the same design runs on a Redis Cluster: a broadcast
is one SPUBLISH (or one script that SPUBLISHes), which reaches only the shard
that owns the group's channel, and each process SSUBSCRIBEs per shard
(``redis_cluster``). Every key a command or script touches at once shares one
hash tag (``{<PREFIX>:h:<group>}`` for history, ``{<PREFIX>:p:<group>}`` for
presence), so nothing crosses slots.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from typing import Any
from urllib.parse import urlsplit

import redis as sync_redis
import redis.asyncio as async_redis
from django.core.exceptions import ImproperlyConfigured
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisClusterException, RedisError
from redis.retry import Retry as SyncRetry

from ..exceptions import BroadcastError
from ..connection_ids import process_id
from . import redis_history, redis_sentinel
from .base import Presence, local_users, sorted_users
from .held import Held, ttl_ms
from .history import HistoryPolicy, new_epoch
from .redis_cluster import ShardedSubscriptions
from .presence_writes import PresenceWrites
from .presence_writes import bounded as _bounded
from .repair import ReadRequest, RepairingBackend

logger = logging.getLogger("django_ws")


SCHEMES = ("redis://", "rediss://", "unix://")
DEFAULT_OPTIONS: dict[str, Any] = {
    "PREFIX": "django_ws",
    "TIMEOUT": 2.0,
    "PRESENCE_TTL": 15.0,
    "RECONNECT_MAX": 5.0,
    "CLUSTER": False,
    "SENTINELS": None,
    "SERVICE": None,
}
#: The first reconnection waits about this long; each failure doubles it.
RECONNECT_MIN = 0.1

#: Errors that mean "Redis is not reachable right now".
UNREACHABLE = (RedisError, RedisClusterException, OSError, asyncio.TimeoutError)


def encode_payload(
    message: dict[str, Any], exclude: frozenset[str], origin: str
) -> bytes:
    """Pack a send event: ``t``/``b``, origin, ``\\n``, excluded ids, ``\\n``, frame."""
    text = message.get("text")
    if text is not None:
        kind, body = b"t", text.encode()
    else:
        kind, body = b"b", bytes(message["bytes"])
    return b"".join(
        (kind, origin.encode(), b"\n", ",".join(sorted(exclude)).encode(), b"\n", body)
    )


def decode_payload(payload: bytes) -> tuple[str, frozenset[str], dict[str, Any]]:
    """Unpack ``encode_payload``: return ``(origin, exclude, send event)``."""
    kind = payload[:1]
    origin, exclude, body = payload[1:].split(b"\n", 2)
    excluded = frozenset(exclude.decode().split(",")) if exclude else frozenset()
    if kind == b"t":
        return (
            origin.decode(),
            excluded,
            {"type": "websocket.send", "text": body.decode()},
        )
    if kind == b"b":
        return origin.decode(), excluded, {"type": "websocket.send", "bytes": body}
    raise ValueError(f"Unknown frame kind {kind!r}")


def _redacted(location: str) -> str:
    """Return ``location`` without its password, for logs and errors."""
    parts = urlsplit(location)
    if parts.password is None:
        return location
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + netloc).geturl()


def _options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ImproperlyConfigured(
            f"WS_BROADCAST['OPTIONS'] has unknown keys {sorted(unknown)}; the "
            f"RedisBackend takes {sorted(DEFAULT_OPTIONS)}."
        )
    merged = {**DEFAULT_OPTIONS, **options}
    prefix = merged["PREFIX"]
    if not isinstance(prefix, str) or not prefix:
        raise ImproperlyConfigured(
            f"WS_BROADCAST['OPTIONS']['PREFIX'] must be a non-empty string, got {prefix!r}."
        )
    for name in ("TIMEOUT", "PRESENCE_TTL", "RECONNECT_MAX"):
        value = merged[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ImproperlyConfigured(
                f"WS_BROADCAST['OPTIONS'][{name!r}] must be a positive number of "
                f"seconds, got {value!r}."
            )
        merged[name] = float(value)
    if not isinstance(merged["CLUSTER"], bool):
        raise ImproperlyConfigured(
            "WS_BROADCAST['OPTIONS']['CLUSTER'] must be True (LOCATION is a node "
            f"of a Redis Cluster) or False, got {merged['CLUSTER']!r}."
        )
    merged["SENTINELS"] = _sentinels(merged["SENTINELS"], merged["SERVICE"])
    if merged["SENTINELS"] and merged["CLUSTER"]:
        raise ImproperlyConfigured(
            "WS_BROADCAST['OPTIONS'] has both 'CLUSTER' and 'SENTINELS': a Redis "
            "Cluster fails over by itself; keep one."
        )
    return merged


def _sentinels(sentinels: Any, service: Any) -> list[tuple[str, int]]:
    """Validate ``SENTINELS`` and ``SERVICE`` (both or neither)."""
    if sentinels is None and service is None:
        return []
    example = "[('10.0.0.1', 26379), ('10.0.0.2', 26379)]"
    if not isinstance(service, str) or not service:
        raise ImproperlyConfigured(
            "WS_BROADCAST['OPTIONS']['SERVICE'] must name the master that the "
            f"sentinels monitor (e.g. 'mymaster'), got {service!r}."
        )
    if not isinstance(sentinels, (list, tuple)) or not sentinels:
        raise ImproperlyConfigured(
            "WS_BROADCAST['OPTIONS']['SENTINELS'] must be a non-empty list of "
            f"(host, port) pairs such as {example}, got {sentinels!r}."
        )
    pairs = []
    for entry in sentinels:
        if (
            not isinstance(entry, (list, tuple))
            or len(entry) != 2
            or not isinstance(entry[0], str)
            or isinstance(entry[1], bool)
            or not isinstance(entry[1], int)
        ):
            raise ImproperlyConfigured(
                "WS_BROADCAST['OPTIONS']['SENTINELS'] must be a non-empty list of "
                f"(host, port) pairs such as {example}; {entry!r} is not one."
            )
        pairs.append((entry[0], entry[1]))
    return pairs



class RedisBackend(PresenceWrites, RepairingBackend):
    """Groups across processes and machines through Redis pub/sub.

    ``LOCATION`` is a ``redis://``, ``rediss://`` or ``unix://`` URL. ``OPTIONS``:
    ``PREFIX`` (``"django_ws"``) namespaces channels and keys; ``TIMEOUT`` (2 s)
    bounds every Redis call; ``PRESENCE_TTL`` (15 s) bounds how long a dead
    process's members stay in ``presence``; ``RECONNECT_MAX`` (5 s) caps the
    backoff between reconnection attempts; ``CLUSTER`` (``False``): ``True``
    when ``LOCATION`` is any node of a Redis Cluster (7.0 or later), for
    sharded pub/sub; ``SENTINELS`` and ``SERVICE``: the Redis Sentinels to ask
    for the service's master (``LOCATION`` then gives only the database and the
    credentials).
    """

    def __init__(
        self, location: str | None = None, options: dict[str, Any] | None = None
    ) -> None:
        super().__init__(location, options)
        if not isinstance(location, str) or not location.startswith(SCHEMES):
            raise ImproperlyConfigured(
                f"WS_BROADCAST['LOCATION'] is {location!r}; the RedisBackend needs a "
                "Redis URL such as 'redis://127.0.0.1:6379/0' (also rediss:// for TLS "
                "and unix:///path/to/redis.sock)."
            )
        try:  # parses the URL the way the clients will, without connecting
            sync_redis.ConnectionPool.from_url(location)
        except ValueError as error:
            raise ImproperlyConfigured(
                f"WS_BROADCAST['LOCATION'] {_redacted(location)!r} is not a valid Redis "
                f"URL: {error}"
            ) from error
        self.location: str = location
        settings = _options(self.options)
        self.prefix: str = settings["PREFIX"]
        self.timeout: float = settings["TIMEOUT"]
        self.presence_ttl: float = settings["PRESENCE_TTL"]
        self.reconnect_max: float = settings["RECONNECT_MAX"]
        self.cluster: bool = settings["CLUSTER"]
        self.sentinels: list[tuple[str, int]] = settings["SENTINELS"]
        self.service: str | None = settings["SERVICE"]
        if self.sentinels and location.startswith("unix://"):
            raise ImproperlyConfigured(
                "WS_BROADCAST['OPTIONS']['SENTINELS'] is set but LOCATION is a unix "
                "socket: give the master's database and credentials as "
                "redis://[:password@]master/0."
            )
        if self.cluster and location.startswith("unix://"):
            raise ImproperlyConfigured(
                "WS_BROADCAST['OPTIONS']['CLUSTER'] is True but LOCATION is a unix "
                "socket: give any node of the cluster as redis://host:port/0."
            )
        sharded = "smessage" in async_redis.client.PubSub.PUBLISH_MESSAGE_TYPES
        if self.cluster and not sharded:
            raise ImproperlyConfigured(
                "WS_BROADCAST['OPTIONS']['CLUSTER'] needs a redis-py whose asyncio "
                "pub/sub reads sharded messages (8.0 or later; "
                f"{sync_redis.__version__} is installed): "
                "pip install -U 'django-ws[redis]'."
            )
        self._publish_script = (
            redis_history.SPUBLISH_SCRIPT
            if self.cluster
            else redis_history.PUBLISH_SCRIPT
        )
        self.heartbeat = self.presence_ttl / 3
        self._channel_prefix = f"{self.prefix}:g:".encode()
        self._sync_client: Any = None  # sync_redis.Redis or RedisCluster
        self._sync_lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        """Forget everything bound to an event loop."""
        self._bound_loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None  # async_redis.Redis or RedisCluster
        self._pubsub: Any = None
        #: With ``CLUSTER``: the per-shard subscriptions (instead of ``_reader``).
        self._shards: ShardedSubscriptions | None = None
        self._connected = False
        self._outage = False
        self._reader: asyncio.Task[None] | None = None
        self._beater: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._dirty: set[str] = set()
        self._confirming: dict[bytes, list[asyncio.Future[None]]] = {}
        self._subscriber_ready = asyncio.Event()  # set while the subscription connection is up
        #: Per subscribed history group: the last ``(epoch, offset)`` delivered here.
        self.delivered = {}

    def __repr__(self) -> str:
        return f"<RedisBackend {_redacted(self.location)}>"

    # Names --------------------------------------------------------------------

    def channel(self, group: str) -> bytes:
        """Return the Redis channel of ``group``."""
        if self.history_policy(group) is not None:
            return redis_history.channel(self.prefix, group)
        return self._channel_prefix + group.encode()

    def _group_of(self, channel: bytes) -> str:
        """Return the group whose channel is ``channel``."""
        if channel.startswith(self._channel_prefix):
            return channel[len(self._channel_prefix) :].decode()
        tag = redis_history.hash_tag(self.prefix, "").encode()[:-1]  # "{prefix:h:"
        return channel[len(tag) : -3].decode()  # drop "}:c"

    def presence_key(self, group: str, process: str) -> str:
        if self.cluster:  # one slot with the index: read together
            return f"{{{self.prefix}:p:{group}}}:{process}"
        return f"{self.prefix}:p:{group}:{process}"

    def presence_index(self, group: str) -> str:
        if self.cluster:
            return f"{{{self.prefix}:p:{group}}}:i"
        return f"{self.prefix}:pi:{group}"

    # Clients ------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        return {
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "health_check_interval": 0,
        }

    def _new_async_client(self) -> Any:
        if self.sentinels:
            assert self.service is not None
            return redis_sentinel.async_master(
                self.sentinels, self.service, self._node_options(keep_db=True)
            )
        if self.cluster:
            return async_redis.RedisCluster.from_url(
                self.location,
                retry=AsyncRetry(NoBackoff(), 0),
                **self._client_options(),
            )
        return async_redis.Redis.from_url(
            self.location, retry=AsyncRetry(NoBackoff(), 0), **self._client_options()
        )

    def _node_options(self, *, keep_db: bool = False) -> dict[str, Any]:
        """Return how to connect to one node: LOCATION's, but host and port."""
        parsed: dict[str, Any] = dict(async_redis.connection.parse_url(self.location))
        for name in ("host", "port", "path", *(() if keep_db else ("db",))):
            parsed.pop(name, None)
        return {**parsed, **self._client_options()}

    def _bind(self) -> asyncio.AbstractEventLoop:
        """Bind to the running loop, dropping what a closed loop left behind."""
        loop = asyncio.get_running_loop()
        if self._bound_loop is not loop and (self._bound_loop is None or self._bound_loop.is_closed()):
            self._reset()
            self._bound_loop = loop
        return loop

    def _async_client(self) -> Any:
        """Return the client of the bound loop, or ``None`` on another live loop."""
        loop = self._bind()
        if loop is not self._bound_loop:
            return None
        if self._client is None:
            self._client = self._new_async_client()
        return self._client

    async def _call(self, operation: Any) -> Any:
        """Run ``operation(client)`` within the timeout, as ``BroadcastError`` on failure."""
        client = self._async_client()
        own = client is None
        if client is None:  # a loop of its own (async_to_sync in a thread): one-off
            client = self._new_async_client()
        try:
            return await _bounded(operation(client), self.timeout)
        except UNREACHABLE as error:
            raise BroadcastError(
                f"Redis at {_redacted(self.location)} did not answer within "
                f"{self.timeout:g} s: {str(error) or type(error).__name__}"
            ) from error
        finally:
            if own:
                await client.aclose()

    def _sync(self) -> Any:
        with self._sync_lock:
            if self._sync_client is None and self.sentinels:
                assert self.service is not None
                self._sync_client = redis_sentinel.sync_master(
                    self.sentinels, self.service, self._node_options(keep_db=True)
                )
            if self._sync_client is None:
                client_class = (
                    sync_redis.RedisCluster if self.cluster else sync_redis.Redis
                )
                self._sync_client = client_class.from_url(
                    self.location,
                    retry=SyncRetry(NoBackoff(), 0),
                    **self._client_options(),
                )
            return self._sync_client

    # Lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Start reading subscriptions and refreshing presence (idempotent).

        Raises ``ImproperlyConfigured`` when ``LOCATION`` answers but is not what
        ``CLUSTER`` says (a cluster node without it, a plain server with it).
        """
        self._bind()
        if self._reader is None and self._shards is None:
            await self._check_server_kind()
        self._ensure_running()

    async def _check_server_kind(self) -> None:
        probe = (
            self._new_async_client()  # the sentinels' master
            if self.sentinels
            else async_redis.Redis.from_url(
                self.location,
                retry=AsyncRetry(NoBackoff(), 0),
                **self._client_options(),
            )
        )
        try:
            info = await _bounded(probe.info("cluster"), self.timeout)
        except UNREACHABLE as error:  # checked when it answers: not at startup
            logger.warning(
                "Redis at %s did not answer at startup (%s); reconnecting",
                _redacted(self.location),
                str(error) or type(error).__name__,
            )
            return
        finally:
            await probe.aclose()
        enabled = bool(info.get("cluster_enabled"))
        if enabled and not self.cluster:
            raise ImproperlyConfigured(
                f"Redis at {_redacted(self.location)} is a Redis Cluster node: set "
                "WS_BROADCAST['OPTIONS']['CLUSTER'] = True."
            )
        if self.cluster and not enabled:
            raise ImproperlyConfigured(
                f"WS_BROADCAST['OPTIONS']['CLUSTER'] is True but Redis at "
                f"{_redacted(self.location)} is not a cluster node (cluster_enabled "
                "is 0): remove 'CLUSTER' or point LOCATION at a cluster node."
            )

    def _ensure_running(self) -> None:
        loop = self._bind()
        if loop is not self._bound_loop:
            raise RuntimeError(
                "The RedisBackend serves members on one event loop per process; "
                f"it is bound to {self._bound_loop!r}, not to {loop!r}."
            )
        if self.cluster:
            if self._shards is None:
                self._shards = ShardedSubscriptions(
                    self,
                    self._async_client,
                    self._node_options(),
                    timeout=self.timeout,
                    heartbeat=self.heartbeat,
                    reconnect_min=RECONNECT_MIN,
                    reconnect_max=self.reconnect_max,
                )
                self._shards.start()
                self._connected = True  # commands go through the cluster client
        elif self._reader is None:
            self._reader = loop.create_task(
                self._read_forever(), name="django_ws redis reader"
            )
        if self._beater is None:
            self._beater = loop.create_task(
                self._beat_forever(), name="django_ws presence"
            )

    async def stop(self) -> None:
        """Stop the tasks, take this process out of presence, close the clients."""
        if self._bound_loop is asyncio.get_running_loop():
            tasks = [task for task in (self._reader, self._beater) if task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._shards is not None:
                await self._shards.stop()
            await self._presence_written()
            self._dirty.update(self.groups)  # sockets still open: out of presence
            if self._dirty:
                try:
                    await _bounded(self._write_presence(leaving=True), self.timeout * 2)
                except asyncio.TimeoutError:
                    pass
            if self._client is not None:
                await self._client.aclose()
        self._reset()
        with self._sync_lock:
            if self._sync_client is not None:
                self._sync_client.close()
                self._sync_client = None

    # Membership ---------------------------------------------------------------

    async def join(self, group: str, connection: Any) -> None:
        """Join, subscribed and counted in presence before returning (when Redis is up)."""
        self._ensure_running()
        await super().join(group, connection)
        if self._connected:
            await self._presence_written()

    async def group_opened(self, group: str) -> None:
        """Subscribe before returning, so a broadcast after ``join`` reaches it."""
        self._presence_changed(group)
        if self._shards is not None:
            try:
                await _bounded(
                    self._shards.subscribe(self.channel(group)), self.timeout
                )
            except UNREACHABLE as error:
                logger.debug(
                    "Subscribing to %r failed (%r); the router will retry", group, error
                )
            return
        if not self._connected and not self._outage:
            try:  # the reader is connecting for the first time
                await _bounded(self._subscriber_ready.wait(), self.timeout)
            except asyncio.TimeoutError:
                pass
        if not self._connected:
            return  # the reader subscribes every group when it (re)connects
        channel = self.channel(group)
        waiter = asyncio.get_running_loop().create_future()
        self._confirming.setdefault(channel, []).append(waiter)
        try:
            await _bounded(self._subscribe(self._pubsub, channel, waiter), self.timeout)
        except UNREACHABLE as error:
            logger.debug(
                "Subscribing to %r failed (%r); the reader will retry", group, error
            )
        finally:
            waiting = self._confirming.get(channel, [])
            if waiter in waiting:
                waiting.remove(waiter)
            if not waiting:
                self._confirming.pop(channel, None)

    def _is_live_pubsub(self, pubsub: Any) -> bool:
        # A pub/sub object that the reader has dropped must not be used again: it
        # would open a connection that nobody reads.
        return pubsub is not None and pubsub is self._pubsub and self._connected

    async def _subscribe(
        self, pubsub: Any, channel: bytes, confirmed: asyncio.Future[None]
    ) -> None:
        if self._is_live_pubsub(pubsub):
            await pubsub.subscribe(channel)
            await confirmed

    async def _unsubscribe(self, pubsub: Any, channel: bytes) -> None:
        if self._is_live_pubsub(pubsub):
            await pubsub.unsubscribe(channel)

    async def group_closed(self, group: str) -> None:
        await super().group_closed(group)
        self._presence_changed(group)  # not awaited: a closing socket must not wait for Redis
        if self._shards is not None and group not in self.groups:
            try:
                await _bounded(
                    self._shards.unsubscribe(self.channel(group)), self.timeout
                )
            except UNREACHABLE as error:
                logger.debug("Unsubscribing from %r failed: %r", group, error)
            return
        if not self._connected or group in self.groups:
            return
        try:
            await _bounded(
                self._unsubscribe(self._pubsub, self.channel(group)), self.timeout
            )
        except UNREACHABLE as error:
            logger.debug("Unsubscribing from %r failed: %r", group, error)

    async def members_changed(self, group: str) -> None:
        self._presence_changed(group)

    # Broadcasting -------------------------------------------------------------

    async def publish(
        self, group: str, message: dict[str, Any], exclude: frozenset[str]
    ) -> None:
        policy = self.history_policy(group)
        if policy is not None:
            keys, args = self._publish_arguments(group, policy, message, exclude)
            await self._call(
                lambda client: self._run_async(
                    client, self._publish_script, keys, args
                )
            )
            return
        self.deliver_local(group, message, exclude)
        payload = encode_payload(message, exclude, process_id())
        channel = self._channel_prefix + group.encode()
        if self.cluster:  # to the owning shard only
            await self._call(lambda client: client.spublish(channel, payload))
        else:
            await self._call(lambda client: client.publish(channel, payload))

    def publish_sync(
        self, group: str, message: dict[str, Any], exclude: frozenset[str]
    ) -> None:
        policy = self.history_policy(group)
        try:
            if policy is not None:
                keys, args = self._publish_arguments(group, policy, message, exclude)
                self._run_sync(self._publish_script, keys, args)
                return
            self.deliver_local(group, message, exclude)
            payload = encode_payload(message, exclude, process_id())
            channel = self._channel_prefix + group.encode()
            if self.cluster:
                self._sync().spublish(channel, payload)
            else:
                self._sync().publish(channel, payload)
        except (RedisError, RedisClusterException, OSError) as error:
            raise BroadcastError(
                f"Redis at {_redacted(self.location)} did not answer within "
                f"{self.timeout:g} s: {error}"
            ) from error

    # History ------------------------------------------------------------------
    # A message to a group with history reaches every process, this one
    # included, through its channel only, so every process delivers in offset
    # order; a process that sees an offset skipped reads it from the stream
    # (the rules are ``RepairingBackend``'s; the reads and the reset are here).

    def _publish_arguments(
        self,
        group: str,
        policy: HistoryPolicy,
        message: dict[str, Any],
        exclude: frozenset[str],
    ) -> tuple[list[str], list[Any]]:
        args = [
            new_epoch(),
            ttl_ms(policy),
            policy.size,
            redis_history.channel(self.prefix, group),
            process_id(),
            ",".join(sorted(exclude)),
            message["text"],
        ]
        return redis_history.keys(self.prefix, group), args

    def _read_arguments(
        self, group: str, policy: HistoryPolicy, first: int
    ) -> tuple[list[str], list[Any]]:
        args = [new_epoch(), ttl_ms(policy), first]
        return redis_history.keys(self.prefix, group), args

    @staticmethod
    async def _run_async(
        client: Any, script: str, keys: list[str], args: list[Any]
    ) -> Any:
        sha = redis_history.sha(script)
        try:
            return await client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(script, len(keys), *keys, *args)

    def _run_sync(self, script: str, keys: list[str], args: list[Any]) -> Any:
        client, sha = self._sync(), redis_history.sha(script)
        try:
            return client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.eval(script, len(keys), *keys, *args)

    async def read_held(
        self, group: str, policy: HistoryPolicy, first: int
    ) -> Held:
        keys, args = self._read_arguments(group, policy, first)
        reply = await self._call(
            lambda client: self._run_async(
                client, redis_history.READ_SCRIPT, keys, args
            )
        )
        return redis_history.decode_read(reply)

    async def read_held_many(self, requests: list[ReadRequest]) -> list[Held | None]:
        """Read several histories in one round trip (one per shard in a cluster).

        A read that failed alone gives ``None``. Raises ``BroadcastError`` when
        Redis is away.
        """

        async def run(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for group, policy, first in requests:
                keys, args = self._read_arguments(group, policy, first)
                # EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT.
                pipe.eval(redis_history.READ_SCRIPT, len(keys), *keys, *args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            return replies

        replies = await self._call(run)
        found: list[Held | None] = []
        for (group, _, _), reply in zip(requests, replies):
            if isinstance(reply, Exception):
                logger.warning("Reading the history of %r failed: %s", group, reply)
                found.append(None)
            else:
                found.append(redis_history.decode_read(reply))
        return found

    def position_sync(self, group: str) -> tuple[str, int]:
        policy = self.policy_of(group)
        keys, args = self._read_arguments(group, policy, 0)
        try:
            held = redis_history.decode_read(
                self._run_sync(redis_history.READ_SCRIPT, keys, args)
            )
        except (RedisError, RedisClusterException, OSError) as error:
            raise BroadcastError(
                f"Redis at {_redacted(self.location)} did not answer within "
                f"{self.timeout:g} s: {error}"
            ) from error
        return held.epoch, held.offset

    async def _received_history(self, group: str, payload: bytes) -> None:
        try:
            message = redis_history.decode_published(payload)
        except ValueError:
            logger.warning("Ignored a malformed broadcast to history group %r", group)
            return
        await self.received_history(
            group, message.epoch, message.offset, message.data, message.exclude
        )

    async def reset_if_behind(self, rewound: list[tuple[str, str, int]]) -> None:
        """Drop each history still at its epoch below the offset delivered here.

        Redis replication is asynchronous: a replica promoted after a failover may
        lack the last messages that this process delivered. ``RESET_IF_BEHIND_SCRIPT``
        checks and drops atomically, in one pipelined round trip (one per shard).
        """

        async def run(client: Any) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            for group, epoch, offset in rewound:
                keys = redis_history.keys(self.prefix, group)
                script = redis_history.RESET_IF_BEHIND_SCRIPT
                pipe.eval(script, len(keys), *keys, epoch, offset)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            return replies

        await self._call(run)

    # Shards (with CLUSTER): ``redis_cluster.ShardListener`` ----------------------

    async def shard_message(self, channel: bytes, payload: bytes) -> None:
        """A shard read a message: deliver it as the single reader does."""
        await self._received(channel, payload)

    async def shard_resubscribed(self, channels: list[bytes]) -> None:
        """Channels moved to a new shard: repair their groups from history."""
        await self.repair_after_reconnect(self._group_of(c) for c in channels)

    def shard_connected(self, name: str) -> None:
        if self._outage:
            logger.info("Reconnected to Redis Cluster node %s", name)
        self._outage = False
        self._dirty.update(self.groups)  # a failover may have lost recent writes
        self._start_presence_write()

    def shard_lost(self, name: str, error: BaseException) -> None:
        self._lost(error)

    def shard_failed(self, name: str) -> None:
        self.events.failed("subscription")

    async def _received(self, channel: bytes, payload: bytes) -> None:
        group = self._group_of(channel)
        if group not in self.groups:
            return  # the last member left while the UNSUBSCRIBE was on its way
        if payload[:1] == b"h":
            await self._received_history(group, payload)
            return
        try:
            origin, exclude, message = decode_payload(payload)
        except ValueError:
            logger.warning("Ignored a malformed broadcast on Redis channel %r", channel)
            return
        if origin != process_id():  # this process delivered its own already
            self.deliver(group, message, exclude)

    # The reader ---------------------------------------------------------------

    async def _read_forever(self) -> None:
        """Keep one subscription connection up, reconnecting with capped backoff."""
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            started = loop.time()
            try:
                await self._read_connection()
            except UNREACHABLE as error:
                self._lost(error)
            except Exception:
                logger.exception("The Redis reader failed; starting it again")
                self.events.failed("subscription")
            if loop.time() - started > self.reconnect_max:
                failures = 0  # it had been up for a while: a new outage
            delay = min(self.reconnect_max, RECONNECT_MIN * 2**failures)
            failures += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    async def _read_connection(self) -> None:
        client = self._new_async_client()
        pubsub = client.pubsub()
        try:
            await _bounded(pubsub.connect(), self.timeout)  # type: ignore[no-untyped-call,unused-ignore]
            self._pubsub = pubsub
            self._connected = True
            channels = [f"{self.prefix}:process:{process_id()}".encode()]
            channels += [self.channel(group) for group in self.groups]
            await _bounded(pubsub.subscribe(*channels), self.timeout)
            if self._outage:
                logger.info(
                    "Reconnected to Redis at %s; subscribed again to %d groups",
                    _redacted(self.location),
                    len(channels) - 1,
                )
            self._outage = False
            self._subscriber_ready.set()
            self._dirty.update(self.groups)  # Redis may have restarted empty
            self._start_presence_write()
            await self.repair_after_reconnect()
            await self._read_messages(pubsub)
        finally:
            self._subscriber_ready.clear()
            self._connected = False
            self._pubsub = None
            for waiters in self._confirming.values():
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(ConnectionError("Redis connection lost"))
            try:
                await _bounded(client.aclose(), self.timeout)
            except Exception as error:  # noqa: BLE001 - closing a broken connection
                logger.debug("Closing the Redis subscription failed: %r", error)

    async def _read_messages(self, pubsub: Any) -> None:
        pinged = False
        while True:
            message = await pubsub.get_message(
                timeout=self.timeout if pinged else self.heartbeat
            )
            if message is None:
                if pinged:
                    raise ConnectionError(
                        f"no answer to PING within {self.timeout:g} s"
                    )
                await _bounded(pubsub.ping(), self.timeout)
                pinged = True
                continue
            pinged = False
            kind = message["type"]
            if kind == "message":
                await self._received(message["channel"], message["data"])
            elif kind == "subscribe":
                for waiter in self._confirming.pop(message["channel"], ()):
                    if not waiter.done():
                        waiter.set_result(None)

    def _lost(self, error: BaseException) -> None:
        if not self._outage:
            self._outage = True
            logger.warning(
                "Lost the connection to Redis at %s (%s); members in this process "
                "still get this process's broadcasts, reconnecting",
                _redacted(self.location),
                str(error) or type(error).__name__,
            )
            self.events.reconnecting()
        else:
            logger.debug("Reconnecting to Redis failed: %r", error)

    # Presence -----------------------------------------------------------------

    async def presence(self, group: str) -> Presence:
        if self._bound_loop is asyncio.get_running_loop():
            await self._presence_written()  # this process's own joins and leaves first
        index = self.presence_index(group)

        async def read(client: async_redis.Redis) -> list[Any]:
            processes: list[bytes] = sorted(await client.smembers(index))  # type: ignore[arg-type]
            if not processes:
                return []
            keys = [self.presence_key(group, process.decode()) for process in processes]
            values: list[Any] = await client.mget(keys)
            dead = [
                process for process, value in zip(processes, values) if value is None
            ]
            if dead:  # processes that died: their entries expired
                await client.srem(index, *dead)
            return [json.loads(value) for value in values if value is not None]

        count, users = 0, []
        for entry in await self._call(read):
            count += entry["count"]
            users.extend(entry["users"])
        return Presence(count=count, users=sorted_users(users))

    async def _write_presence(self, *, leaving: bool = False) -> None:
        """Write this process's entry of every changed group, in one round trip each."""
        ttl = int(self.presence_ttl * 1000)
        while self._dirty:
            groups, self._dirty = self._dirty, set()
            process = process_id()
            client = self._async_client()
            if client is None:
                return
            pipe = client.pipeline(transaction=False)
            for group in groups:
                key, index = self.presence_key(group, process), self.presence_index(
                    group
                )
                members = None if leaving else self.groups.get(group)
                if members:
                    entry = {"count": len(members), "users": local_users(members)}
                    pipe.set(key, json.dumps(entry, separators=(",", ":")), px=ttl)
                    pipe.sadd(index, process)
                    pipe.pexpire(index, ttl)
                else:
                    pipe.delete(key)
                    pipe.srem(index, process)
            try:
                await _bounded(pipe.execute(), self.timeout)
            except UNREACHABLE as error:
                # Rewritten in full when the reader reconnects; entries expire anyway.
                logger.debug("Writing presence to Redis failed: %r", error)
                self.events.failed("presence")
                return
            except Exception:
                logger.exception("Writing presence to Redis failed")
                self.events.failed("presence")
                return

    async def _beat_forever(self) -> None:
        """Refresh this process's presence entries before they expire."""
        while True:
            await asyncio.sleep(self.heartbeat)
            if self.groups and self._connected:
                self._dirty.update(self.groups)
                await self._presence_written()
