"""A private PostgreSQL server for the benchmark, with ``pg_stat_statements``.

Like ``processes.RedisServer`` and ``cluster.RedisClusterServers``: Debian's
``initdb`` and ``postgres`` (``/usr/lib/postgresql/<newest>/bin``) on a free
127.0.0.1 port, pinned to the load generator's core (the server core stays for
uvicorn), nothing synced to disk, stopped by PID on exit, its directory removed.
The shared server on 5432 is never touched. PostgreSQL refuses to run as root,
so under root it runs as the ``postgres`` user, in a directory that user owns.

``pg_stat_statements`` is preloaded so a scenario can count exactly which
statements a broadcast cost: ``reset_stats()`` when all members are in,
``statement_calls()`` after the last broadcast.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .common import APPS, HOST, LOADGEN_CPU, BenchError, capture
from .processes import free_port, stop_process, tail

#: What ``capabilities`` says when the server's binaries are not there.
MISSING = (
    "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb and "
    "postgres, with pg_stat_statements): install Debian's postgresql package "
    "(apt-get install postgresql)"
)
#: The statements of the runner itself, left out of the counts.
OWN_STATEMENTS = ("pg_stat_statements",)


def postgres_bin() -> Path | None:
    """The directory of the newest installed PostgreSQL's server binaries, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    for initdb in reversed(found):
        directory = Path(initdb).parent
        version = directory.parts[-2]
        extension = Path(f"/usr/share/postgresql/{version}/extension")
        if (directory / "postgres").exists() and (
            extension / "pg_stat_statements.control"
        ).exists():
            return directory
    return None


def _as_postgres() -> dict[str, Any]:
    """``Popen`` arguments that drop root for the ``postgres`` user."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


class PostgresServer:
    """One ``postgres`` on a free port with a data directory of its own."""

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise BenchError(MISSING)
        self.bin_dir = bin_dir
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="django-ws-bench-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.proc: subprocess.Popen[Any] | None = None

    @property
    def conninfo(self) -> str:
        return f"host={HOST} port={self.port} user=postgres dbname=postgres"

    def __enter__(self) -> PostgresServer:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise BenchError(
                    "PostgreSQL refuses to run as root and there is no 'postgres' "
                    "user: install Debian's postgresql package (it creates one)"
                ) from None
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        made = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                *("-D", str(self.data), "-U", "postgres", "--auth=trust"),
                *("--no-sync", "-E", "UTF8", "--no-instructions"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **_as_postgres(),
        )
        if made.returncode:
            raise BenchError(f"initdb failed: {made.stderr.strip()[-400:]}")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    *("taskset", "-c", LOADGEN_CPU, str(self.bin_dir / "postgres")),
                    *("-D", str(self.data), "-p", str(self.port)),
                    *("-k", str(self.directory), "-c", f"listen_addresses={HOST}"),
                    *("-c", "fsync=off", "-c", "synchronous_commit=off"),
                    *("-c", "max_connections=100"),
                    *("-c", "shared_preload_libraries=pg_stat_statements"),
                    # "top": the statements clients sent, not what they ran inside
                    *("-c", "pg_stat_statements.track=top"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                **_as_postgres(),
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"postgres exited: {tail(self.log)}")
            if self.sql("SELECT 1", check=False).strip() == "1":
                break
            time.sleep(0.1)
        else:
            raise BenchError(f"postgres did not answer within 30 s: {tail(self.log)}")
        self.sql("CREATE EXTENSION pg_stat_statements")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        shutil.rmtree(self.directory, ignore_errors=True)

    def sql(self, statement: str, *, check: bool = True) -> str:
        """Run one statement with ``psql``; return its unaligned output."""
        out = capture(
            [
                str(self.bin_dir / "psql"),
                *("-h", HOST, "-p", str(self.port), "-U", "postgres", "-d", "postgres"),
                *("-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement),
            ],
            10,
        )
        if check and out.returncode:
            raise BenchError(f"psql {statement!r}: {out.stderr.strip()[-300:]}")
        return out.stdout

    def reset_stats(self) -> None:
        self.sql("SELECT pg_stat_statements_reset()")

    def statement_calls(self) -> dict[str, int]:
        """Return ``{normalized statement: calls}`` since ``reset_stats()``.

        All databases and users; the runner's own statements are left out.
        """
        rows = self.sql(
            "SELECT calls, regexp_replace(query, '\\s+', ' ', 'g') "
            "FROM pg_stat_statements"
        )
        calls: dict[str, int] = {}
        for row in rows.splitlines():
            count, _, query = row.partition("|")
            if not query or any(own in query for own in OWN_STATEMENTS):
                continue
            calls[query.strip()] = calls.get(query.strip(), 0) + int(count)
        return calls

    def migrate(self, python: Path, env: dict[str, str]) -> None:
        """Create django-ws' tables (its migration) with a target's Python and settings."""
        out = capture(
            [str(python), "-m", "django", "migrate", "django_ws", "--database",
             "broadcast", "-v", "0"],
            120,
            cwd=APPS,
            env=env,
        )
        if out.returncode:
            raise BenchError(f"migrate django_ws: {out.stderr.strip()[-400:]}")


@contextmanager
def postgres_for(
    ctx: Any, targets: list[Any], rec: Any
) -> Iterator[tuple[PostgresServer | None, list[Any]]]:
    """Start a private server for the block when a target needs PostgreSQL.

    Yields the server (or ``None``) and the targets that can run: when the
    server cannot start or be migrated, each target that needs it is recorded
    as failed with the reason, and the others still run. It sets
    ``ctx.postgres`` (so targets get ``BENCH_POSTGRES_PORT``) and runs
    django-ws' migration once, with the first django-ws target's settings.
    """
    users = [t for t in targets if t.needs in NEEDS_POSTGRES_SERVER]
    if not users:
        yield None, targets
        return
    others = [t for t in targets if t not in users]
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(PostgresServer())
            ctx.postgres = server
            stack.callback(setattr, ctx, "postgres", None)
            migrating = [t for t in users if t.needs == "djangows-postgres"]
            if migrating:
                server.migrate(migrating[0].python, ctx.environment(migrating[0]))
        except BenchError as error:
            for target in users:
                rec.fail(target, f"private PostgreSQL: {error}")
            stack.close()
            yield None, others
            return
        yield server, targets


#: The capabilities that need a PostgreSQL server the runner starts.
NEEDS_POSTGRES_SERVER = ("psycopg", "djangows-postgres")
