"""Fixtures and helpers of the PostgresBackend tests (import the fixtures you use).

- ``postgres_alias`` is the ``postgres`` alias of ``tests/settings.py`` (the shared
  server on 127.0.0.1:5432, database ``django_ws_test``), migrated, with database
  access allowed for the test. A missing server fails the test with what to run.
- ``private_postgres`` is a cluster of the test's own on the port of the
  ``postgres_private`` alias, safe to stop and start, migrated.
- ``use_postgres(alias, **options)`` switches ``WS_BROADCAST`` to a PostgresBackend
  with a ``PREFIX`` of the test's own, and stops it after the test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connections

from django_ws.broadcast import get_backend
from django_ws.broadcast.postgres import PostgresBackend
from django_ws.broadcast.postgres_schema import CREATE
from django_ws.operations.postgres_tables import CREATE as CREATE_OPERATIONS
from tests.live_server import port_accepts
from tests.private_postgres import PrivatePostgres, postgres_bin

POSTGRES_BACKEND = "django_ws.broadcast.PostgresBackend"
#: Serializes the migrations of concurrent test runs on the shared server.
MIGRATION_LOCK = 7_412_015
_migrated: set[str] = set()


def conninfo(alias: str) -> str:
    """Return a libpq connection string for ``alias`` (for direct psycopg use)."""
    entry = django_settings.DATABASES[alias]
    return (
        f"host={entry['HOST']} port={entry['PORT']} user={entry['USER']} "
        f"dbname={entry['NAME']}"
    )


def migrate(alias: str) -> None:
    """Create the backend's and the operations store's tables in ``alias`` (once).

    The SQL of the app's migration, run directly: a test marked for the default
    database may not use Django's connection of another alias.
    ``test_the_migration_creates_the_tables`` runs the migration itself.
    """
    if alias in _migrated:
        return
    with psycopg.connect(conninfo(alias), autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        connection.execute(CREATE.encode())
        connection.execute(CREATE_OPERATIONS.encode())
    _migrated.add(alias)


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def postgres_settings(alias: str, **options: Any) -> dict[str, Any]:
    options.setdefault("PREFIX", unique_prefix())
    options.setdefault("TIMEOUT", 1)
    return {"BACKEND": POSTGRES_BACKEND, "LOCATION": alias, "OPTIONS": options}


@pytest.fixture
def postgres_alias(django_db_blocker: Any) -> Iterator[str]:
    port = int(django_settings.DATABASES["postgres"]["PORT"])
    if not port_accepts(port):
        pytest.fail(
            f"PostgreSQL is not reachable on 127.0.0.1:{port}. Run the tests with "
            "`bash scripts/test.sh` (scripts/ensure_postgres.sh installs and starts "
            "it), or start PostgreSQL with trust auth for the user postgres."
        )
    with django_db_blocker.unblock():
        migrate("postgres")
        yield "postgres"
        connections["postgres"].close()


@pytest.fixture
def private_postgres(django_db_blocker: Any) -> Iterator[PrivatePostgres]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.fail(
            "PostgreSQL's server binaries are missing (/usr/lib/postgresql/*/bin): "
            "apt-get install postgresql (scripts/ensure_postgres.sh does)."
        )
    server = PrivatePostgres(
        bin_dir, int(django_settings.DATABASES["postgres_private"]["PORT"])
    )
    server.start()
    _migrated.discard("postgres_private")
    try:
        with django_db_blocker.unblock():
            migrate("postgres_private")
            yield server
            connections["postgres_private"].close()
    finally:
        server.close()


UsePostgres = Callable[..., PostgresBackend]


@pytest.fixture
async def use_postgres(settings: Any) -> AsyncIterator[UsePostgres]:
    backends: list[PostgresBackend] = []

    def use(alias: str, **options: Any) -> PostgresBackend:
        history = options.pop("HISTORY", None)
        settings.WS_BROADCAST = postgres_settings(alias, **options)
        if history is not None:
            settings.WS_BROADCAST["HISTORY"] = history
        backend = get_backend()
        assert isinstance(backend, PostgresBackend)
        backends.append(backend)
        return backend

    yield use
    for backend in backends:
        await backend.stop()
        assert backend.member_count() == 0


def notify(alias: str, channel: str, payload: str) -> None:
    """Send a NOTIFY as another process would."""
    with psycopg.connect(conninfo(alias), autocommit=True) as other:
        other.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def closing(alias: str, function: Callable[[], None]) -> Callable[[], None]:
    """Wrap ``function`` (run in a worker thread) to close that thread's connection.

    Django opens a connection per thread; one left open in a pool's thread would
    be garbage-collected later, open, in some other test.
    """

    def run() -> None:
        try:
            function()
        finally:
            connections[alias].close()

    return run
