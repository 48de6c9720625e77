"""One invocation's state, and a target's server started in it."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .common import APPS, BenchError, capture
from .params import Params
from .postgres import PostgresServer
from .processes import RedisServer, ServerProcess, start_uvicorn, tail
from .targets import Target


@dataclass
class Context:
    params: Params
    workdir: Path
    smoke: bool
    redis: RedisServer | None = None
    #: The Redis Cluster a scenario started, if any (``REDIS_CLUSTER_URL``).
    cluster_url: str | None = None
    #: The private PostgreSQL a scenario started, if any (``BENCH_POSTGRES_PORT``).
    postgres: PostgresServer | None = None
    capabilities: dict[str, str] = field(default_factory=dict)  # name -> "" or why not
    sessions: dict[str, str] = field(default_factory=dict)  # target name -> session key

    def available(self, target: Target) -> str:
        """Return "" if ``target`` can run, else why not."""
        if not target.needs:
            return ""
        return self.capabilities.get(target.needs, "not probed")

    def db_path(self, target: Target) -> Path:
        return self.workdir / f"db-{target.settings_module or target.name}.sqlite3"

    def environment(self, target: Target) -> dict[str, str]:
        """The environment of every process that runs ``target``'s code."""
        env = {"BENCH_DB": str(self.db_path(target)), "PYTHONDONTWRITEBYTECODE": "1"}
        if self.redis is not None:
            env["REDIS_URL"] = self.redis.url
        if self.cluster_url is not None:
            env["REDIS_CLUSTER_URL"] = self.cluster_url
        if self.postgres is not None:
            env["BENCH_POSTGRES_PORT"] = str(self.postgres.port)
        return {**os.environ, **dict(target.env), **env}

    def session_headers(self, target: Target) -> list[str]:
        """Loadgen --header args with a logged-in session cookie, made once per target."""
        if not target.session:
            return []
        if target.name not in self.sessions:
            out = capture(
                [str(target.python), str(APPS / "make_session.py")],
                120,
                cwd=APPS,
                env=self.environment(target),
            )
            if out.returncode:
                raise BenchError(f"make_session failed: {out.stderr.strip()[-400:]}")
            self.sessions[target.name] = out.stdout.strip().splitlines()[-1]
        return ["--header", f"Cookie: sessionid={self.sessions[target.name]}"]

    @contextlib.contextmanager
    def serve(self, target: Target) -> Iterator[ServerProcess]:
        """Run ``target``'s uvicorn for the block; a failure in it names the log."""
        server = start_uvicorn(
            target.python,
            target.app,
            lifespan=target.lifespan,
            env=self.environment(target),
            log_dir=self.workdir,
            name=target.name,
        )
        try:
            yield server
        except BenchError as error:
            server.stop()
            log_tail = tail(server.log)
            if log_tail and log_tail not in str(error):
                raise BenchError(f"{error} | {target.name} server log: {log_tail}")
            raise
        finally:
            server.stop()
