"""The PostgreSQL backend: one NOTIFY per broadcast, fan-out inside each process.

For projects that run on PostgreSQL and would rather not add Redis. ``LOCATION``
names a ``DATABASES`` alias: the backend uses its credentials for connections of
its own (one LISTENs, one publishes and reads), and Django's own connection of
that alias for ``broadcast_sync`` from sync code, so that a broadcast made inside
``transaction.atomic()`` is delivered only if the transaction commits (NOTIFY is
transactional), and at commit, not before.

Every group is a NOTIFY channel (``<PREFIX>_<hash of the group>``). A process
LISTENs only to the groups it has members in, on one connection read by one
task, and hands each message to its members itself. Per-group channels rather
than one shared channel: PostgreSQL queues a NOTIFY once and every listening
session reads the queue either way, but only the sessions LISTENing to the
channel are sent the payload, so a process without members of a group gets no
bytes and no wake-up for it (``docs/broadcast.md`` has the measured figures).

A message too large for a NOTIFY (8000 bytes) goes into a row of
``django_ws_payload`` whose id the NOTIFY carries; rows are deleted
``PAYLOAD_TTL`` seconds later. History, positions and presence live in the
tables of ``postgres_schema``; the heartbeat of each process deletes whatever
has expired, so nothing grows without bound and no cron job is needed.

The LISTEN connection must reach PostgreSQL directly: a pooler in transaction
mode (PgBouncer's default) hands each statement to any server session, so a
LISTEN would be lost. Publishing works through such a pooler.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import re
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections
from django.db import Error as DjangoDatabaseError
from psycopg import Notify

from ..connection_ids import process_id
from ..exceptions import BroadcastError
from . import postgres_sql as sql
from .base import Presence, local_users, sorted_users
from .held import Held
from .history import HistoryPolicy, new_epoch
from .presence_writes import PresenceWrites
from .presence_writes import bounded as _bounded
from .repair import RepairingBackend

logger = logging.getLogger("django_ws")

T = TypeVar("T")

DEFAULT_OPTIONS: dict[str, Any] = {
    "PREFIX": "django_ws",
    "TIMEOUT": 2.0,
    "PRESENCE_TTL": 15.0,
    "RECONNECT_MAX": 5.0,
    "PAYLOAD_TTL": 60.0,
}
#: A prefix goes into channel names (identifiers of at most 63 bytes).
PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_]{1,30}")
#: The first reconnection waits about this long; each failure doubles it.
RECONNECT_MIN = 0.1
#: Rows of each table deleted at most per sweep (one sweep per heartbeat).
SWEEP_LIMIT = 5000
#: Connection parameters of Django's that are not libpq's.
DJANGO_ONLY_PARAMS = frozenset({"cursor_factory", "context", "prepare_threshold"})

#: Errors that mean "PostgreSQL is not reachable right now".
UNREACHABLE = (psycopg.Error, OSError, asyncio.TimeoutError)


def _options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = set(options) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ImproperlyConfigured(
            f"WS_BROADCAST['OPTIONS'] has unknown keys {sorted(unknown)}; the "
            f"PostgresBackend takes {sorted(DEFAULT_OPTIONS)}."
        )
    merged = {**DEFAULT_OPTIONS, **options}
    prefix = merged["PREFIX"]
    if not isinstance(prefix, str) or not PREFIX_PATTERN.fullmatch(prefix):
        raise ImproperlyConfigured(
            "WS_BROADCAST['OPTIONS']['PREFIX'] must be 1 to 30 letters, digits or "
            f"underscores (it starts NOTIFY channel names), got {prefix!r}."
        )
    for name in ("TIMEOUT", "PRESENCE_TTL", "RECONNECT_MAX", "PAYLOAD_TTL"):
        value = merged[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ImproperlyConfigured(
                f"WS_BROADCAST['OPTIONS'][{name!r}] must be a positive number of "
                f"seconds, got {value!r}."
            )
        merged[name] = float(value)
    return merged


def _check_alias(location: Any) -> str:
    from django.conf import settings

    aliases = sorted(settings.DATABASES)
    if location is None:
        location = DEFAULT_DB_ALIAS
    if not isinstance(location, str) or location not in settings.DATABASES:
        raise ImproperlyConfigured(
            f"WS_BROADCAST['LOCATION'] is {location!r}; the PostgresBackend needs the "
            f"alias of a PostgreSQL database in DATABASES (one of {aliases}), "
            "e.g. 'default'."
        )
    engine = settings.DATABASES[location].get("ENGINE", "")
    if connections[location].vendor != "postgresql":
        raise ImproperlyConfigured(
            f"WS_BROADCAST['LOCATION'] is {location!r}, whose ENGINE is {engine!r}; the "
            "PostgresBackend needs a database with ENGINE "
            "'django.db.backends.postgresql'. Name another alias, or use "
            "'django_ws.broadcast.RedisBackend' or 'MemoryBackend'."
        )
    return location


def _discard(connection: psycopg.BaseConnection[Any]) -> None:
    """Drop a connection that failed, without waiting for the server."""
    connection.pgconn.finish()



def _exclude_text(exclude: frozenset[str]) -> str:
    return ",".join(sorted(exclude))


def _held_from_rows(log_row: Any, message_rows: list[Any]) -> Held:
    epoch, offset, _, now_ms = log_row
    entries = tuple(
        (
            int(number),
            data,
            frozenset(exclude.split(",")) if exclude else frozenset(),
            int(created_ms),
        )
        for number, data, exclude, created_ms in message_rows
    )
    return Held(epoch, int(offset), int(now_ms), entries)


class PostgresBackend(PresenceWrites, RepairingBackend):
    """Groups across processes through PostgreSQL LISTEN/NOTIFY.

    ``LOCATION`` is a ``DATABASES`` alias (``"default"`` when omitted) whose ENGINE
    is PostgreSQL. ``OPTIONS``: ``PREFIX`` (``"django_ws"``) namespaces channels
    and rows; ``TIMEOUT`` (2 s) bounds every call on the backend's own
    connections; ``PRESENCE_TTL`` (15 s) bounds how long a dead process's
    members stay in ``presence``; ``RECONNECT_MAX`` (5 s) caps the backoff
    between LISTEN reconnections; ``PAYLOAD_TTL`` (60 s) is how long a message
    too large for a NOTIFY stays readable.
    """

    def __init__(
        self, location: str | None = None, options: dict[str, Any] | None = None
    ) -> None:
        super().__init__(location, options)
        self.alias: str = _check_alias(location)
        self.location = self.alias
        settings = _options(self.options)
        self.prefix: str = settings["PREFIX"]
        self.timeout: float = settings["TIMEOUT"]
        self.presence_ttl: float = settings["PRESENCE_TTL"]
        self.reconnect_max: float = settings["RECONNECT_MAX"]
        self.payload_ttl: float = settings["PAYLOAD_TTL"]
        self.heartbeat = self.presence_ttl / 3
        self._serials = itertools.count(1)
        self._sync_connection: psycopg.Connection[Any] | None = None
        self._sync_lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        """Forget everything bound to an event loop."""
        self._bound_loop: asyncio.AbstractEventLoop | None = None
        self._query: psycopg.AsyncConnection[Any] | None = None
        self._query_lock: asyncio.Lock | None = None
        self._connected = False
        self._outage = False
        #: Set by ``stop``: the tasks' loops end even if a cancellation is lost
        #: (Python 3.10's wait_for drops one that comes as its awaitable ends).
        self._stopping = False
        self._reader: asyncio.Task[None] | None = None
        self._beater: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._dirty: set[str] = set()
        self._listen_ready = asyncio.Event()
        #: Set when the listener has something to do (a command, data to read).
        self._wake: asyncio.Future[None] | None = None
        #: LISTEN/UNLISTEN for the reader to run: (command, channel, confirmation).
        self._commands: list[tuple[str, str, asyncio.Future[None] | None]] = []
        self._inbox: deque[Notify] = deque()
        #: Publishers waiting for their message to reach this process's members.
        self._waiters: dict[str, list[tuple[str, int, asyncio.Future[None]]]] = {}
        #: The groups by channel, for the groups this process LISTENs to.
        self._channel_groups: dict[str, str] = {}
        self.delivered = {}

    def __repr__(self) -> str:
        return f"<PostgresBackend {self.alias!r}>"

    def channel(self, group: str) -> str:
        """Return the NOTIFY channel of ``group``."""
        return sql.channel(self.prefix, group)

    # Connections ----------------------------------------------------------------

    def connection_params(self) -> dict[str, Any]:
        """Return the libpq parameters of the alias, with this backend's timeouts."""
        params = {
            key: value
            for key, value in connections[self.alias].get_connection_params().items()
            if key not in DJANGO_ONLY_PARAMS and isinstance(value, (str, int))
        }
        params.setdefault("connect_timeout", max(1, round(self.timeout)))
        timeout_ms = max(1, int(self.timeout * 1000))
        # Bounds a publish that waits for a group's row lock, held by an open
        # transaction elsewhere, as well as any slow statement.
        own = f"-c statement_timeout={timeout_ms}"
        params["options"] = f"{params['options']} {own}" if "options" in params else own
        return params

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        return await _bounded(
            psycopg.AsyncConnection.connect(
                autocommit=True, **self.connection_params()
            ),
            self.timeout,
        )

    def _bind(self) -> asyncio.AbstractEventLoop:
        """Bind to the running loop, dropping what a closed loop left behind."""
        loop = asyncio.get_running_loop()
        if self._bound_loop is not loop and (
            self._bound_loop is None or self._bound_loop.is_closed()
        ):
            if self._query is not None:  # left open by a closed loop (async_to_sync)
                _discard(self._query)
            self._reset()
            self._bound_loop = loop
            self._query_lock = asyncio.Lock()
        return loop

    def _unreachable(self, error: BaseException) -> BroadcastError:
        detail = str(error).strip() or type(error).__name__
        return BroadcastError(
            f"PostgreSQL (database {self.alias!r}) did not answer within "
            f"{self.timeout:g} s: {detail}"
        )

    async def _call(
        self, operation: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T:
        """Run ``operation(connection)`` within the timeout, ``BroadcastError`` on failure.

        On the bound loop the backend's query connection serves, one call at a
        time; a connection that failed is dropped, and the next call connects.
        """
        loop = self._bind()
        if loop is not self._bound_loop:  # a loop of its own: a one-off connection
            try:
                connection = await self._connect()
            except UNREACHABLE as error:
                raise self._unreachable(error) from error
            try:
                return await _bounded(operation(connection), self.timeout)
            except UNREACHABLE as error:
                raise self._unreachable(error) from error
            finally:
                await connection.close()
        assert self._query_lock is not None
        async with self._query_lock:
            try:
                if self._query is None or self._query.closed:
                    self._query = await self._connect()
                return await _bounded(operation(self._query), self.timeout)
            except UNREACHABLE as error:
                broken, self._query = self._query, None
                if broken is not None:
                    _discard(broken)
                raise self._unreachable(error) from error

    @staticmethod
    async def _close_quietly(connection: psycopg.AsyncConnection[Any]) -> None:
        try:
            await asyncio.wait_for(connection.close(), 1)
        except Exception as error:  # noqa: BLE001 - closing a broken connection
            logger.debug("Closing a PostgreSQL connection failed: %r", error)

    def _sync_cursor_call(self, operation: Callable[[Any], T]) -> T:
        """Run ``operation(cursor)`` synchronously, ``BroadcastError`` on failure.

        Inside ``transaction.atomic()`` on the alias the cursor is Django's, so
        that the call belongs to the transaction (a NOTIFY is sent at commit, not
        at all on rollback). Otherwise it is the backend's own connection, in
        autocommit, shared by the threads of the process: a script, a view or a
        Celery task needs no Django connection of its own for it.
        """
        if self.in_transaction():
            return self._django_cursor_call(operation)
        with self._sync_lock:
            try:
                if self._sync_connection is None or self._sync_connection.closed:
                    self._sync_connection = psycopg.Connection.connect(
                        autocommit=True, **self.connection_params()
                    )
                with self._sync_connection.cursor() as cursor:
                    return operation(cursor)
            except (psycopg.Error, OSError) as error:
                broken, self._sync_connection = self._sync_connection, None
                if broken is not None:
                    _discard(broken)
                raise self._unreachable(error) from error

    def _django_cursor_call(self, operation: Callable[[Any], T]) -> T:
        try:
            with connections[self.alias].cursor() as cursor:
                return operation(cursor)
        except DjangoDatabaseError as error:
            raise self._unreachable(error) from error

    def in_transaction(self) -> bool:
        """Whether a sync broadcast now would wait for a transaction's commit."""
        return connections[self.alias].in_atomic_block

    # Lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start LISTENing and refreshing presence (idempotent)."""
        self._ensure_running()

    def _ensure_running(self) -> None:
        loop = self._bind()
        if loop is not self._bound_loop:
            raise RuntimeError(
                "The PostgresBackend serves members on one event loop per process; "
                f"it is bound to {self._bound_loop!r}, not to {loop!r}."
            )
        if self._reader is None:
            self._reader = loop.create_task(
                self._listen_forever(), name="django_ws postgres listener"
            )
        if self._beater is None:
            self._beater = loop.create_task(
                self._beat_forever(), name="django_ws postgres heartbeat"
            )

    async def stop(self) -> None:
        """Stop the tasks, take this process out of presence, close the connections."""
        if self._bound_loop is asyncio.get_running_loop():
            tasks = [t for t in (self._reader, self._beater) if t is not None]
            self._stopping = True
            self._wake_listener()
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=self.timeout * 2)
            await self._presence_written()
            self._dirty.update(self.groups)  # sockets still open: out of presence
            if self._dirty:
                try:
                    await _bounded(self._write_presence(leaving=True), self.timeout * 2)
                except asyncio.TimeoutError:
                    pass
            if self._query is not None:
                await self._close_quietly(self._query)
        elif self._query is not None:  # bound to another loop (async_to_sync's)
            _discard(self._query)
        self._reset()
        with self._sync_lock:
            if self._sync_connection is not None:
                self._sync_connection.close()
                self._sync_connection = None

    # Membership -----------------------------------------------------------------

    async def join(self, group: str, connection: Any) -> None:
        """Join, LISTENing and counted in presence before returning (when reachable)."""
        self._ensure_running()
        await super().join(group, connection)
        if self._connected:
            await self._presence_written()

    async def group_opened(self, group: str) -> None:
        """LISTEN before returning, so a broadcast after ``join`` reaches it."""
        channel = self.channel(group)
        self._channel_groups[channel] = group
        self._presence_changed(group)
        if not self._connected and not self._outage:
            try:  # the listener is connecting for the first time
                await _bounded(self._listen_ready.wait(), self.timeout)
            except asyncio.TimeoutError:
                pass
        if not self._connected:
            return  # the listener LISTENs to every group when it (re)connects
        confirmed = asyncio.get_running_loop().create_future()
        self._commands.append(("LISTEN", channel, confirmed))
        self._wake_listener()
        try:
            await _bounded(asyncio.shield(confirmed), self.timeout)
        except (asyncio.TimeoutError, ConnectionError) as error:
            logger.debug("LISTEN to %r failed (%r); the listener will retry", group, error)

    async def group_closed(self, group: str) -> None:
        await super().group_closed(group)
        self._presence_changed(group)  # not awaited: a closing socket must not wait
        if group in self.groups:
            return
        channel = self.channel(group)
        self._channel_groups.pop(channel, None)
        if self._connected:
            self._commands.append(("UNLISTEN", channel, None))
            self._wake_listener()

    async def members_changed(self, group: str) -> None:
        self._presence_changed(group)

    # Broadcasting ---------------------------------------------------------------

    async def publish(
        self, group: str, message: dict[str, Any], exclude: frozenset[str]
    ) -> None:
        policy = self.history_policy(group)
        if policy is not None:
            params = self._history_params(group, policy, message, exclude)

            async def publish_history(
                connection: psycopg.AsyncConnection[Any],
            ) -> tuple[str, int] | None:
                cursor = await connection.execute(sql.PUBLISH_HISTORY, params)
                row = await cursor.fetchone()
                return None if row is None else (row[0], int(row[1]))

            position = await self._call(publish_history)
            if position is not None:
                await self._delivered_here(group, *position)
            return
        self.deliver_local(group, message, exclude)
        statement, arguments = self._plain_statement(group, message, exclude, True)

        async def notify(connection: psycopg.AsyncConnection[Any]) -> None:
            await connection.execute(statement, arguments)

        await self._call(notify)

    def publish_sync(
        self, group: str, message: dict[str, Any], exclude: frozenset[str]
    ) -> None:
        """Publish from sync code; inside ``transaction.atomic()``, at its commit."""
        policy = self.history_policy(group)
        if policy is not None:
            params = self._history_params(group, policy, message, exclude)
            self._sync_cursor_call(lambda c: c.execute(sql.PUBLISH_HISTORY, params))
            return
        here = not self.in_transaction()
        if here:  # at once, and even if PostgreSQL is away
            self.deliver_local(group, message, exclude)
        statement, arguments = self._plain_statement(group, message, exclude, here)
        self._sync_cursor_call(lambda cursor: cursor.execute(statement, arguments))

    def _plain_statement(
        self,
        group: str,
        message: dict[str, Any],
        exclude: frozenset[str],
        delivered_here: bool,
    ) -> tuple[str, tuple[Any, ...]]:
        payload, stored = sql.plain_notify(
            message, exclude, process_id(), next(self._serials), delivered_here
        )
        channel = self.channel(group)
        if stored is None:
            return sql.NOTIFY, (channel, payload)
        is_text, body = stored
        return sql.NOTIFY_STORED, (is_text, body, self.payload_ttl, channel, payload)

    def _history_params(
        self,
        group: str,
        policy: HistoryPolicy,
        message: dict[str, Any],
        exclude: frozenset[str],
    ) -> dict[str, Any]:
        data = message["text"]
        inline = sql.history_inline(data, exclude)
        return {
            "ns": self.prefix,
            "group": group,
            "new_epoch": new_epoch(),
            "ttl": policy.ttl,
            "size": policy.size,
            "data": data,
            "exclude": _exclude_text(exclude),
            "channel": self.channel(group),
            "inline": inline,
            "announced_exclude": _exclude_text(exclude) if inline else "",
        }

    async def _delivered_here(self, group: str, epoch: str, offset: int) -> None:
        """Wait (bounded) until this process's members of ``group`` got ``offset``.

        So that ``broadcast`` returns once local members have the message, as
        with the other backends; a NOTIFY reaches the listener only after the
        publishing statement has answered.
        """
        if group not in self.groups or not self._connected:
            return
        if self._has_delivered(group, epoch, offset):
            return
        waiter = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(group, [])
        waiters.append((epoch, offset, waiter))
        try:
            await _bounded(waiter, self.timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            if (epoch, offset, waiter) in waiters:
                waiters.remove((epoch, offset, waiter))
            if not waiters:
                self._waiters.pop(group, None)

    def _has_delivered(self, group: str, epoch: str, offset: int) -> bool:
        last = self.delivered.get(group)
        return last is not None and (last[0] != epoch or last[1] >= offset)

    def _wake_waiters(self, group: str) -> None:
        for epoch, offset, waiter in self._waiters.get(group, ()):
            if not waiter.done() and self._has_delivered(group, epoch, offset):
                waiter.set_result(None)

    def _deliver_published(
        self, group: str, epoch: str, offset: int, data: str, exclude: frozenset[str]
    ) -> None:
        super()._deliver_published(group, epoch, offset, data, exclude)
        self._wake_waiters(group)

    def _lost_history(self, group: str, epoch: str, offset: int) -> None:
        super()._lost_history(group, epoch, offset)
        self._wake_waiters(group)

    # History --------------------------------------------------------------------

    async def read_held(self, group: str, policy: HistoryPolicy, first: int) -> Held:
        async def read(connection: psycopg.AsyncConnection[Any]) -> Held:
            cursor = connection.cursor()
            await cursor.execute(sql.SELECT_LOG, (self.prefix, group))
            row = await cursor.fetchone()
            if row is None or row[2]:  # no epoch yet, or it expired
                await cursor.execute(sql.ENSURE_LOG, self._ensure_params(group, policy))
                row = await cursor.fetchone()
                if row is None:  # another process created it meanwhile
                    await cursor.execute(sql.SELECT_LOG, (self.prefix, group))
                    row = await cursor.fetchone()
            rows: list[Any] = []
            if row is not None and 0 < first <= row[1]:
                await cursor.execute(
                    sql.SELECT_MESSAGES, (self.prefix, group, row[0], first)
                )
                rows = await cursor.fetchall()
            if row is None:
                raise psycopg.OperationalError("the group's log row vanished")
            return _held_from_rows(row, rows)

        return await self._call(read)

    async def reset_if_behind(self, rewound: list[tuple[str, str, int]]) -> None:
        """Delete each group's log row still at its epoch below the offset delivered here.

        With asynchronous streaming replication, a standby promoted after a
        failover may lack the last committed broadcasts; the next read then
        starts a new epoch (``ENSURE_LOG``), in one transaction for all groups.
        """
        params = [(self.prefix, group, epoch, offset) for group, epoch, offset in rewound]

        async def reset(connection: psycopg.AsyncConnection[Any]) -> None:
            async with connection.transaction():
                await connection.cursor().executemany(sql.RESET_IF_BEHIND, params)

        await self._call(reset)

    def _ensure_params(self, group: str, policy: HistoryPolicy) -> dict[str, Any]:
        return {
            "ns": self.prefix,
            "group": group,
            "new_epoch": new_epoch(),
            "ttl": policy.ttl,
        }

    def position_sync(self, group: str) -> tuple[str, int]:
        policy = self.policy_of(group)

        def read(cursor: Any) -> tuple[str, int]:
            cursor.execute(sql.SELECT_LOG, (self.prefix, group))
            row = cursor.fetchone()
            if row is None or row[2]:
                cursor.execute(sql.ENSURE_LOG, self._ensure_params(group, policy))
                row = cursor.fetchone()
                if row is None:
                    cursor.execute(sql.SELECT_LOG, (self.prefix, group))
                    row = cursor.fetchone()
            return row[0], int(row[1])

        return self._sync_cursor_call(read)

    async def _read_stored_history(
        self, group: str, epoch: str, offset: int
    ) -> tuple[str, frozenset[str]] | None:
        async def read(
            connection: psycopg.AsyncConnection[Any],
        ) -> tuple[str, frozenset[str]] | None:
            cursor = await connection.execute(
                sql.SELECT_MESSAGE, (self.prefix, group, epoch, offset)
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            data, exclude = row
            return str(data), frozenset(exclude.split(",")) if exclude else frozenset()

        return await self._call(read)

    async def _read_stored_payload(
        self, row_id: int
    ) -> tuple[frozenset[str], dict[str, Any]] | None:
        async def read(
            connection: psycopg.AsyncConnection[Any],
        ) -> tuple[frozenset[str], dict[str, Any]] | None:
            cursor = await connection.execute(sql.SELECT_STORED, (row_id,))
            row = await cursor.fetchone()
            return None if row is None else sql.stored_message(row[0], row[1])

        return await self._call(read)

    # Receiving ------------------------------------------------------------------

    async def _received(self, notify: Notify) -> None:
        group = self._channel_groups.get(notify.channel)
        if group is None or group not in self.groups:
            return  # the last member left while the UNLISTEN was on its way
        payload = notify.payload
        if payload[:1] in ("h", "H"):
            await self._received_announced(group, payload)
            return
        try:
            plain = sql.decode_plain(payload)
        except ValueError:
            logger.warning("Ignored a malformed broadcast to group %r", group)
            return
        if plain.delivered_here and plain.sender == process_id():
            return  # this process delivered its own already
        message, exclude = plain.message, plain.exclude
        if message is None:
            try:
                stored = await self._read_stored_payload(plain.stored_id)
            except BroadcastError as error:
                logger.warning("A large broadcast to %r was lost: %s", group, error)
                self.events.failed("payload_read")
                return
            if stored is None:
                logger.warning(
                    "A large broadcast to %r was lost: its row was deleted after "
                    "PAYLOAD_TTL (this process read it too late)",
                    group,
                )
                self.events.failed("payload_read")
                return
            exclude, message = stored
        self.deliver(group, message, exclude)

    async def _received_announced(self, group: str, payload: str) -> None:
        try:
            announced = sql.decode_announced(payload)
        except ValueError:
            logger.warning("Ignored a malformed broadcast to history group %r", group)
            return
        data, exclude = announced.data, announced.exclude
        if data is None:
            last = self.delivered.get(group)
            if last == (announced.epoch, announced.offset) or (
                last is not None
                and last[0] == announced.epoch
                and last[1] >= announced.offset
            ):
                return  # delivered already (by a repair)
            try:
                stored = await self._read_stored_history(
                    group, announced.epoch, announced.offset
                )
            except BroadcastError as error:
                logger.warning("Reading a message of %r failed: %s", group, error)
                self.events.failed("history_read")
                stored = None
            if stored is None:  # trimmed already, or unreadable: a gap to repair
                self._lost_history(group, announced.epoch, announced.offset)
                return
            data, exclude = stored
        await self.received_history(
            group, announced.epoch, announced.offset, data, exclude
        )

    # The listener ---------------------------------------------------------------

    async def _listen_forever(self) -> None:
        """Keep one LISTEN connection up, reconnecting with capped backoff."""
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopping:
            started = loop.time()
            try:
                await self._listen_connection()
            except UNREACHABLE as error:
                self._lost(error)
            except Exception:
                logger.exception("The PostgreSQL listener failed; starting it again")
                self.events.failed("subscription")
            if loop.time() - started > self.reconnect_max:
                failures = 0  # it had been up for a while: a new outage
            delay = min(self.reconnect_max, RECONNECT_MIN * 2**failures)
            failures += 1
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))

    def _notified(self, notify: Notify) -> None:
        self._inbox.append(notify)

    async def _listen_connection(self) -> None:
        connection = await self._connect()
        connection.add_notify_handler(self._notified)
        try:
            self._commands.clear()
            channels = sorted({self.channel(group) for group in self.groups})
            await self._run_commands(connection, [("LISTEN", c) for c in channels])
            if self._outage:
                logger.info(
                    "Reconnected to PostgreSQL (database %r); listening again to "
                    "%d groups",
                    self.alias,
                    len(channels),
                )
            self._outage = False
            self._connected = True
            # Groups opened while the LISTENs above were on their way: from now
            # on group_opened queues its own.
            missing = {self.channel(group) for group in self.groups} - set(channels)
            self._commands.extend(("LISTEN", channel, None) for channel in sorted(missing))
            self._listen_ready.set()
            self._dirty.update(self.groups)  # the server may have restarted
            self._start_presence_write()
            await self.repair_after_reconnect()
            await self._listen(connection)
        finally:
            self._listen_ready.clear()
            self._connected = False
            for _, _, confirmed in self._commands:
                if confirmed is not None and not confirmed.done():
                    confirmed.set_exception(ConnectionError("PostgreSQL connection lost"))
            self._commands.clear()
            self._inbox.clear()
            _discard(connection)  # no await here: this may run on cancellation

    async def _run_commands(
        self, connection: psycopg.AsyncConnection[Any], commands: list[tuple[str, str]]
    ) -> None:
        if commands:
            text = "; ".join(f"{verb} {sql.quoted(channel)}" for verb, channel in commands)
            await _bounded(connection.execute(text.encode()), self.timeout)

    async def _listen(self, connection: psycopg.AsyncConnection[Any]) -> None:
        """Read notifications; run LISTEN/UNLISTEN; check the connection when idle."""
        loop = asyncio.get_running_loop()
        pgconn = connection.pgconn
        while not self._stopping:
            await self._drain()
            if self._commands:
                commands, self._commands = self._commands, []
                await self._run_commands(connection, [(v, c) for v, c, _ in commands])
                for _, _, confirmed in commands:
                    if confirmed is not None and not confirmed.done():
                        confirmed.set_result(None)
                continue
            if self._take_notifies(pgconn):  # parsed already, with a reply
                continue
            # A future and asyncio.wait, not wait_for: on Python 3.10 wait_for
            # can swallow a cancellation that comes as the wait ends.
            wake = self._wake = loop.create_future()
            fileno = pgconn.socket
            loop.add_reader(fileno, self._wake_listener)
            try:
                await asyncio.wait((wake,), timeout=self.heartbeat)
                woke = wake.done()
            finally:
                loop.remove_reader(fileno)
                self._wake = None
            if not woke:  # idle: make sure the connection is still there
                await _bounded(connection.execute(b"SELECT 1"), self.timeout)
                continue
            pgconn.consume_input()  # raises when the server closed the connection
            self._take_notifies(pgconn)

    def _take_notifies(self, pgconn: Any) -> int:
        """Move the notifications libpq has parsed into the inbox; return how many."""
        taken = 0
        while (received := pgconn.notifies()) is not None:
            self._inbox.append(
                Notify(received.relname.decode(), received.extra.decode(), received.be_pid)
            )
            taken += 1
        return taken

    def _wake_listener(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _drain(self) -> None:
        while self._inbox:
            await self._received(self._inbox.popleft())

    def _lost(self, error: BaseException) -> None:
        if not self._outage:
            self._outage = True
            logger.warning(
                "Lost the LISTEN connection to PostgreSQL (database %r) (%s); members "
                "in this process still get this process's broadcasts, reconnecting",
                self.alias,
                str(error).strip() or type(error).__name__,
            )
            self.events.reconnecting()
        else:
            logger.debug("Reconnecting to PostgreSQL failed: %r", error)

    # Presence -------------------------------------------------------------------

    async def presence(self, group: str) -> Presence:
        if self._bound_loop is asyncio.get_running_loop():
            await self._presence_written()  # this process's own joins and leaves first

        async def read(connection: psycopg.AsyncConnection[Any]) -> list[Any]:
            cursor = await connection.execute(sql.READ_PRESENCE, (self.prefix, group))
            return await cursor.fetchall()

        count, users = 0, []
        for members, users_json in await self._call(read):
            count += members
            users.extend(json.loads(users_json))
        return Presence(count=count, users=sorted_users(users))

    async def _write_presence(self, *, leaving: bool = False) -> None:
        """Write this process's row of every changed group, in one transaction."""
        while self._dirty:
            groups, self._dirty = self._dirty, set()
            process = process_id()
            writes, deletes = [], []
            for group in sorted(groups):
                members = None if leaving else self.groups.get(group)
                if members:
                    users = json.dumps(local_users(members), separators=(",", ":"))
                    writes.append(
                        (self.prefix, group, process, len(members), users, self.presence_ttl)
                    )
                else:
                    deletes.append((self.prefix, group, process))

            async def write(connection: psycopg.AsyncConnection[Any]) -> None:
                async with connection.transaction():
                    cursor = connection.cursor()
                    if writes:
                        await cursor.executemany(sql.WRITE_PRESENCE, writes)
                    if deletes:
                        await cursor.executemany(sql.DELETE_PRESENCE, deletes)

            try:
                await self._call(write)
            except BroadcastError as error:
                # Rewritten in full when the listener reconnects; rows expire anyway.
                logger.debug("Writing presence to PostgreSQL failed: %s", error)
                self.events.failed("presence")
                return

    async def _beat_forever(self) -> None:
        """Refresh this process's presence rows; delete what has expired."""
        while not self._stopping:
            await asyncio.sleep(self.heartbeat)
            if self.groups and self._connected:
                self._dirty.update(self.groups)
                await self._presence_written()
            await self.sweep()

    async def sweep(self) -> None:
        """Delete expired history, payloads and presence rows (a bounded batch)."""

        async def delete(connection: psycopg.AsyncConnection[Any]) -> None:
            await connection.execute(sql.SWEEP, {"limit": SWEEP_LIMIT})

        try:
            await self._call(delete)
        except BroadcastError as error:
            logger.debug("Deleting expired rows failed: %s", error)
