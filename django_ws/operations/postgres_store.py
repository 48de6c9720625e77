"""The operations store on PostgreSQL: limit counts and live-view snapshots, with TTLs.

It serves ``PostgresBackend`` with the semantics of ``redis_store.RedisStore``, on
the tables of ``postgres_tables`` (migration ``0002``), through connections of
its own made with the backend's ``connection_params()`` (the ``DATABASES``
alias, its ``connect_timeout`` and ``statement_timeout``). Rows are namespaced
by the backend's ``PREFIX``.

A limit is the set of rows ``(kind, value, process) -> count`` that have not
expired. Counting a new socket runs in one short transaction: it first takes a
transaction-scoped advisory lock per key (in a fixed order, so two acquires
cannot deadlock), then, in one statement that starts after the locks are held
(so it sees every acquire committed before), sums the live rows of each key
and, only when none is full, adds one to this process's row of every key. Two
processes can therefore never both take the last place. Each process restates
its own counts every third of the TTL (``refresh``), so a process that dies
stops counting within the TTL, and a count that went astray is set right at the
next refresh. The same beat, and each snapshot write, delete a bounded batch of
expired rows: no cron job, no table that grows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import psycopg
from django.core.exceptions import ImproperlyConfigured

from ..connection_ids import process_id
from .stores import LimitKey

T = TypeVar("T")

#: Rows of each table deleted at most per sweep.
SWEEP_LIMIT = 1000

LOCK = "SELECT pg_advisory_xact_lock(k) FROM unnest(%(locks)s::bigint[]) AS k"

ACQUIRE = """
WITH wanted AS (
    SELECT * FROM unnest(%(kinds)s::text[], %(values)s::text[], %(limits)s::int[])
        WITH ORDINALITY AS w(kind, value, lim, position)
), totals AS (
    SELECT w.position, w.lim, COALESCE(sum(c.count), 0) AS total
    FROM wanted w LEFT JOIN django_ws_ops_count c
        ON c.namespace = %(namespace)s AND c.kind = w.kind AND c.value = w.value
        AND c.expires > clock_timestamp()
    GROUP BY w.position, w.lim
), full_key AS (
    SELECT min(position) AS position FROM totals WHERE total >= lim
), counted AS (
    INSERT INTO django_ws_ops_count AS c
        (namespace, kind, value, process, count, expires)
    SELECT %(namespace)s, kind, value, %(process)s, 1,
        clock_timestamp() + make_interval(secs => %(ttl)s)
    FROM wanted WHERE (SELECT position FROM full_key) IS NULL
    ON CONFLICT (namespace, kind, value, process) DO UPDATE SET
        count = CASE WHEN c.expires > clock_timestamp() THEN c.count + 1 ELSE 1 END,
        expires = EXCLUDED.expires
)
SELECT position FROM full_key
"""

# A row that falls to zero expires now, so that the sweep finds it by the index.
RELEASE = """
UPDATE django_ws_ops_count AS c SET count = c.count - 1,
    expires = CASE WHEN c.count <= 1 THEN clock_timestamp() ELSE c.expires END
FROM unnest(%(kinds)s::text[], %(values)s::text[]) AS w(kind, value)
WHERE c.namespace = %(namespace)s AND c.kind = w.kind AND c.value = w.value
    AND c.process = %(process)s AND c.count > 0
"""

REFRESH = """
INSERT INTO django_ws_ops_count AS c (namespace, kind, value, process, count, expires)
SELECT %(namespace)s, kind, value, %(process)s, count,
    clock_timestamp() + make_interval(secs => %(ttl)s)
FROM unnest(%(kinds)s::text[], %(values)s::text[], %(counts)s::int[])
    AS w(kind, value, count)
ON CONFLICT (namespace, kind, value, process) DO UPDATE SET
    count = EXCLUDED.count, expires = EXCLUDED.expires
"""

WRITE_SNAPSHOT = """
INSERT INTO django_ws_ops_snapshot (namespace, process, snapshot, expires)
VALUES (%(namespace)s, %(process)s, %(snapshot)s,
    clock_timestamp() + make_interval(secs => %(ttl)s))
ON CONFLICT (namespace, process) DO UPDATE SET
    snapshot = EXCLUDED.snapshot, expires = EXCLUDED.expires
"""

READ_SNAPSHOTS = """
SELECT snapshot FROM django_ws_ops_snapshot
WHERE namespace = %(namespace)s AND expires > clock_timestamp()
ORDER BY process
"""

CLOSE = """
DELETE FROM django_ws_ops_snapshot
WHERE namespace = %(namespace)s AND process = %(process)s
"""

# Rows that expired (counts that fell to zero included), of every namespace.
# now() (the statement's start in autocommit), not clock_timestamp(): a volatile
# bound would keep the planner from the ``expires`` index.
SWEEP = """
WITH counts AS (
    DELETE FROM django_ws_ops_count WHERE ctid = ANY (ARRAY(
        SELECT ctid FROM django_ws_ops_count
        WHERE expires < now() LIMIT %(limit)s))
)
DELETE FROM django_ws_ops_snapshot WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM django_ws_ops_snapshot
    WHERE expires < now() LIMIT %(limit)s))
"""


def lock_id(namespace: str, kind: str, value: str) -> int:
    """Return the advisory lock id of a limit key (64 bits, signed, stable)."""
    name = f"django_ws:ops:{namespace}:{kind}:{value}".encode()
    digest = hashlib.blake2b(name, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStore:
    """``OperationsStore`` on the PostgreSQL database that a ``PostgresBackend`` uses.

    ``connection_params`` returns libpq parameters (the backend's method of that
    name);
    ``namespace`` keeps apart the rows of backends with different ``PREFIX``es;
    ``timeout`` bounds every call; ``process`` defaults to this process's id.
    """

    def __init__(
        self,
        connection_params: Callable[[], dict[str, Any]],
        namespace: str,
        timeout: float,
        ttl: float,
        process: str | None = None,
    ) -> None:
        self.connection_params = connection_params
        self.namespace = namespace
        self.timeout = timeout
        self.ttl = ttl
        self._process = process
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._sync_connection: psycopg.Connection[Any] | None = None
        self._sync_lock = threading.Lock()

    @property
    def process(self) -> str:
        return self._process or process_id()

    def _params(self, **params: Any) -> dict[str, Any]:
        own = {"namespace": self.namespace, "process": self.process, "ttl": self.ttl}
        return {**own, **params}

    # Connections ----------------------------------------------------------------

    async def _call(
        self, operation: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]
    ) -> T:
        """Run ``operation`` on this loop's connection, one at a time, in the timeout.

        A connection that failed is dropped; the next call connects again.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop (a server restart, tests): reconnect
            if self._connection is not None:  # its loop's: closed without a goodbye
                self._connection.pgconn.finish()
            self._connection, self._loop, self._lock = None, loop, asyncio.Lock()
        assert self._lock is not None
        async with self._lock:
            try:
                if self._connection is None or self._connection.closed:
                    self._connection = await asyncio.wait_for(
                        psycopg.AsyncConnection.connect(
                            autocommit=True, **self.connection_params()
                        ),
                        self.timeout,
                    )
                return await asyncio.wait_for(operation(self._connection), self.timeout)
            except psycopg.errors.UndefinedTable as error:
                raise self._not_migrated(error) from error
            except BaseException:
                broken, self._connection = self._connection, None
                if broken is not None:
                    broken.pgconn.finish()  # without waiting for a server that failed
                raise

    def _sync_call(self, operation: Callable[[psycopg.Connection[Any]], T]) -> T:
        """Run ``operation`` on the connection of sync callers (views), one by one."""
        with self._sync_lock:
            try:
                if self._sync_connection is None or self._sync_connection.closed:
                    self._sync_connection = psycopg.Connection.connect(
                        autocommit=True, **self.connection_params()
                    )
                return operation(self._sync_connection)
            except psycopg.errors.UndefinedTable as error:
                raise self._not_migrated(error) from error
            except BaseException:
                broken, self._sync_connection = self._sync_connection, None
                if broken is not None:
                    broken.pgconn.finish()
                raise

    def _not_migrated(self, error: psycopg.Error) -> ImproperlyConfigured:
        name = self.connection_params().get("dbname")
        database = f"the database {name!r}" if name else "the database"
        return ImproperlyConfigured(
            f"The operations store's tables are missing from {database} "
            f"({error.diag.message_primary}): run `python manage.py migrate django_ws` "
            "on the PostgresBackend's DATABASES alias."
        )

    # The store ------------------------------------------------------------------

    async def acquire(self, keys: Sequence[LimitKey]) -> LimitKey | None:
        if not keys:
            return None
        locks = sorted(
            {lock_id(self.namespace, kind, value) for kind, value, _ in keys}
        )
        params = self._params(
            locks=locks,
            kinds=[kind for kind, _, _ in keys],
            values=[value for _, value, _ in keys],
            limits=[limit for _, _, limit in keys],
        )

        async def run(connection: psycopg.AsyncConnection[Any]) -> Any:
            async with connection.transaction():
                await connection.execute(LOCK, params)
                cursor = await connection.execute(ACQUIRE, params)
                return await cursor.fetchone()

        row = await self._call(run)
        full = row[0] if row is not None else None
        return keys[full - 1] if full else None

    async def release(self, keys: Sequence[LimitKey]) -> None:
        if not keys:
            return
        params = self._params(
            kinds=[kind for kind, _, _ in keys], values=[value for _, value, _ in keys]
        )

        async def run(connection: psycopg.AsyncConnection[Any]) -> None:
            await connection.execute(RELEASE, params)

        await self._call(run)

    async def refresh(self, counts: dict[tuple[str, str], int]) -> None:
        alive = [(key, count) for key, count in counts.items() if count > 0]
        params = self._params(
            kinds=[kind for (kind, _), _ in alive],
            values=[value for (_, value), _ in alive],
            counts=[count for _, count in alive],
            limit=SWEEP_LIMIT,
        )

        async def run(connection: psycopg.AsyncConnection[Any]) -> None:
            if alive:
                await connection.execute(REFRESH, params)
            await connection.execute(SWEEP, params)

        await self._call(run)

    async def write_snapshot(self, snapshot: dict[str, Any]) -> None:
        text = json.dumps(snapshot, separators=(",", ":"), default=str)
        params = self._params(snapshot=text, limit=SWEEP_LIMIT)
        params["process"] = snapshot["process"]

        async def run(connection: psycopg.AsyncConnection[Any]) -> None:
            await connection.execute(WRITE_SNAPSHOT, params)
            await connection.execute(SWEEP, params)

        await self._call(run)

    def read_snapshots(self) -> list[dict[str, Any]]:
        def run(connection: psycopg.Connection[Any]) -> list[Any]:
            return connection.execute(READ_SNAPSHOTS, self._params()).fetchall()

        return [json.loads(text) for (text,) in self._sync_call(run)]

    async def close(self) -> None:
        on_its_loop = self._loop is asyncio.get_running_loop()

        async def run(connection: psycopg.AsyncConnection[Any]) -> None:
            await connection.execute(CLOSE, self._params())

        try:
            if on_its_loop:
                await self._call(run)
        finally:
            connection, self._connection = self._connection, None
            if connection is not None:
                if on_its_loop:
                    await connection.close()
                else:  # its loop is gone: drop it without the server's goodbye
                    connection.pgconn.finish()
            with self._sync_lock:  # a later read_snapshots connects again
                if self._sync_connection is not None:
                    self._sync_connection.close()
                self._sync_connection = None
