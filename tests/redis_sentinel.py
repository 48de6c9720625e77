"""Redis Sentinel of the test's own: a master, a replica and one sentinel.

``PrivateRedisSentinel`` starts them on free ports in a temporary directory
(nothing on disk but the sentinel's config, which Sentinel rewrites), waits until
the replica is in sync and the sentinel knows it, and can kill the master by PID
and wait for the sentinel to promote the replica. Everything it started is
stopped by PID.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.live_server import (
    POLL_INTERVAL,
    _kill_process,
    _running,
    _stop_process,
    free_port,
    redis_server_executable,
)

SERVICE = "django-ws-test"
#: How long the master may be silent before the sentinel fails it over (ms).
DOWN_AFTER_MS = 1000


class PrivateRedisSentinel:
    """A master, its replica and one sentinel (quorum 1) on free ports."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.master, self.replica, self.sentinel = free_port(), free_port(), free_port()
        self._directory = tempfile.TemporaryDirectory(prefix="django_ws_sentinel_")
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        return [("127.0.0.1", self.sentinel)]

    def _start(self, port: int, *arguments: str) -> None:
        directory = Path(self._directory.name) / str(port)
        directory.mkdir()
        process = subprocess.Popen(
            [
                self.executable,
                *arguments,
                *("--bind", "127.0.0.1", "--port", str(port)),
                *("--dir", str(directory), "--logfile", str(directory / "log")),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _running.add(process)
        self.processes[port] = process

    def start(self, timeout: float = 30.0) -> PrivateRedisSentinel:
        data = ("--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0")
        self._start(self.master, *data)
        self._start(self.replica, *data, "--replicaof", "127.0.0.1", str(self.master))
        deadline = time.monotonic() + timeout
        self._wait(deadline, self._replica_synced, "the replica is in sync")
        config = Path(self._directory.name) / "sentinel.conf"
        config.write_text(
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.master} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} 10000\n"
        )
        self._start(self.sentinel, str(config), "--sentinel")
        self._wait(deadline, self._sentinel_knows_replica, "the sentinel sees it")
        return self

    @staticmethod
    def _wait(deadline: float, condition: Callable[[], bool], what: str) -> None:
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(POLL_INTERVAL)
        raise RuntimeError(f"Timed out waiting until {what}.")

    def _replica_synced(self) -> bool:
        try:
            with redis.Redis(port=self.replica, socket_timeout=1) as client:
                return client.info("replication").get("master_link_status") == "up"
        except redis.RedisError:
            return False

    def _sentinel_knows_replica(self) -> bool:
        try:
            with redis.Redis(port=self.sentinel, socket_timeout=1) as client:
                return bool(client.execute_command("SENTINEL", "REPLICAS", SERVICE))
        except redis.RedisError:
            return False

    def current_master(self) -> int:
        with redis.Redis(port=self.sentinel, socket_timeout=1) as client:
            _, port = client.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE
            )
        return int(port)

    def wait_replicated(self, timeout: float = 10.0) -> None:
        """Wait until the replica has every write the master has.

        Replication is asynchronous: a master killed before its replica caught
        up takes its last writes with it (Redis's documented trade-off).
        """
        master = self.current_master()
        self._wait(
            time.monotonic() + timeout,
            lambda: _replica_caught_up(master),
            "the replica has the master's writes",
        )

    def kill_master(self) -> int:
        """SIGKILL the current master (by PID); return its port."""
        port = self.current_master()
        _kill_process(self.processes[port])
        return port

    def wait_for_failover(self, killed: int, timeout: float = 30.0) -> None:
        def promoted() -> bool:
            try:
                return self.current_master() != killed
            except redis.RedisError:
                return False

        self._wait(time.monotonic() + timeout, promoted, "the replica is promoted")

    def close(self) -> None:
        for process in self.processes.values():
            _stop_process(process, 5.0)
        self._directory.cleanup()


def _replica_caught_up(master: int) -> bool:
    """Whether every replica of the master on ``master`` acknowledged its offset."""
    with redis.Redis(port=master, socket_timeout=1) as client:
        info = client.info("replication")
    replicas = [v for k, v in info.items() if k.startswith("slave")]
    return bool(replicas) and all(
        isinstance(r, dict) and int(r["offset"]) >= int(info["master_repl_offset"])
        for r in replicas
    )


@pytest.fixture
def private_redis_sentinel() -> Iterator[PrivateRedisSentinel]:
    executable = redis_server_executable()
    if executable is None:
        pytest.fail(
            "redis-server is missing: install it (apt-get install redis-server) "
            "or set DJANGO_WS_TEST_REDIS_SERVER to its path."
        )
    sentinel = PrivateRedisSentinel(executable).start()
    yield sentinel
    sentinel.close()
