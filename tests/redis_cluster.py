"""A Redis Cluster of the test's own: 3 masters and 3 replicas on free ports.

``PrivateRedisCluster`` starts six ``redis-server --cluster-enabled yes`` in a
temporary directory, joins them with ``redis-cli --cluster create
--cluster-replicas 1``, and waits until every slot is served. A test may kill a
master by PID and wait for its replica to take over. Every process it started is
stopped by PID at the end (and at interpreter exit if a test crashed).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.live_server import (
    POLL_INTERVAL,
    _kill_process,
    _running,
    _stop_process,
    redis_server_executable,
)

#: How long a master may be unreachable before its replica takes over (ms).
NODE_TIMEOUT_MS = 1000
#: Redis cluster nodes talk on their port + 10000 (the cluster bus).
BUS_OFFSET = 10000


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_ports(count: int) -> list[int]:
    """Return ``count`` ports that are free, each with its bus port free too."""
    ports: list[int] = []
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if (
            port + BUS_OFFSET < 65536
            and port not in ports
            and _port_is_free(port + BUS_OFFSET)
        ):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("Found no free ports for a Redis Cluster.")


@dataclass
class ClusterNode:
    """One redis-server of the cluster."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    @property
    def running(self) -> bool:
        return self.process.poll() is None


class PrivateRedisCluster:
    """Six cluster-enabled redis-servers (3 masters, 3 replicas), nothing on disk."""

    def __init__(self, executable: str, cli: str) -> None:
        self.executable = executable
        self.cli = cli
        self.ports = free_cluster_ports(6)
        self.url = f"redis://127.0.0.1:{self.ports[0]}/0"
        self._directory = tempfile.TemporaryDirectory(prefix="django_ws_cluster_")
        self.nodes: dict[int, ClusterNode] = {}

    def start(self, timeout: float = 30.0) -> PrivateRedisCluster:
        """Start the servers, create the cluster, wait until every slot is served."""
        root = Path(self._directory.name)
        for port in self.ports:
            directory = root / str(port)
            directory.mkdir()
            log = directory / "redis.log"
            process = subprocess.Popen(
                [
                    self.executable,
                    *("--bind", "127.0.0.1", "--port", str(port)),
                    *("--cluster-enabled", "yes"),
                    *("--cluster-config-file", str(directory / "nodes.conf")),
                    *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
                    # A replica takes over however long its link was down, and
                    # syncs at once (not after the default 5 s delay).
                    *("--cluster-replica-validity-factor", "0"),
                    *("--repl-diskless-sync-delay", "0"),
                    *("--save", "", "--appendonly", "no"),
                    *("--dir", str(directory), "--logfile", str(log)),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _running.add(process)
            self.nodes[port] = ClusterNode(port, process, log)
        deadline = time.monotonic() + timeout
        for node in self.nodes.values():
            self._wait(deadline, lambda: self._pings(node), f"node {node.port} starts")
        created = subprocess.run(
            [
                self.cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                *("--cluster-replicas", "1", "--cluster-yes"),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
        )
        if created.returncode != 0:
            raise RuntimeError(
                "redis-cli --cluster create failed:\n" + created.stdout.decode()
            )
        self._wait(deadline, self.serves_every_slot, "the cluster serves every slot")
        self._wait(deadline, self.replicas_synced, "every replica is in sync")
        return self

    @staticmethod
    def _wait(deadline: float, condition: object, what: str) -> None:
        assert callable(condition)
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(POLL_INTERVAL)
        raise RuntimeError(f"Timed out waiting until {what}.")

    @staticmethod
    def _pings(node: ClusterNode) -> bool:
        try:
            with node.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def _live(self) -> list[ClusterNode]:
        return [node for node in self.nodes.values() if node.running]

    def serves_every_slot(self) -> bool:
        """Whether every live node sees the cluster ``ok`` with 3 live masters."""
        try:
            for node in self._live():
                with node.client() as client:
                    info = client.execute_command("CLUSTER INFO")
                    if info.get("cluster_state") != "ok":
                        return False
                    if info.get("cluster_slots_ok") != "16384":
                        return False
            return len(self.masters()) == 3
        except redis.RedisError:
            return False

    def replicas_synced(self) -> bool:
        """Whether 3 live replicas have their link to their master up."""
        synced = 0
        for node in self._live():
            try:
                with node.client() as client:
                    info = client.info("replication")
            except redis.RedisError:
                return False
            if info.get("role") == "slave":
                if info.get("master_link_status") != "up":
                    return False
                synced += 1
        return synced == 3

    def masters(self) -> list[int]:
        """Return the ports of the live masters that serve slots."""
        found = []
        for node in self._live():
            try:
                with node.client() as client:
                    role = client.execute_command("ROLE")
            except redis.RedisError:
                continue
            if role[0] in (b"master", "master"):
                with node.client() as client:
                    slots = client.execute_command("CLUSTER SLOTS")
                if any(int(entry[2][1]) == node.port for entry in slots):
                    found.append(node.port)
        return sorted(found)

    def owner(self, key: bytes | str) -> int:
        """Return the port of the live master that serves ``key``'s slot."""
        with self.nodes[self.masters()[0]].client() as client:
            slot = client.execute_command("CLUSTER KEYSLOT", key)
            for start, end, master, *_ in client.execute_command("CLUSTER SLOTS"):
                if int(start) <= int(slot) <= int(end):
                    return int(master[1])
        raise RuntimeError(f"No master serves the slot of {key!r}.")

    def move_slot(self, key: bytes | str, to: int) -> None:
        """Migrate the slot of ``key``, with its keys, to the master on ``to``.

        The steps of a resharding (``CLUSTER SETSLOT`` IMPORTING, MIGRATING,
        ``MIGRATE``, NODE), as ``redis-cli --cluster reshard`` does them.
        """
        source = self.owner(key)
        with (
            self.nodes[source].client() as old,
            self.nodes[to].client() as new,
        ):
            slot = int(old.execute_command("CLUSTER KEYSLOT", key))
            old_id = old.execute_command("CLUSTER MYID")
            new_id = new.execute_command("CLUSTER MYID")
            new.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", old_id)
            old.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", new_id)
            keys = old.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
            if keys:
                old.execute_command(
                    "MIGRATE", "127.0.0.1", to, "", 0, 5000, "KEYS", *keys
                )
            new.execute_command("CLUSTER SETSLOT", slot, "NODE", new_id)
            old.execute_command("CLUSTER SETSLOT", slot, "NODE", new_id)
            for port in self.masters():
                if port not in (source, to):
                    with self.nodes[port].client() as other:
                        other.execute_command("CLUSTER SETSLOT", slot, "NODE", new_id)

    def command_calls(self) -> dict[int, dict[str, int]]:
        """Return, per live node, how many times each command ran."""
        calls = {}
        for node in self._live():
            with node.client() as client:
                stats = client.info("commandstats")
            calls[node.port] = {name: entry["calls"] for name, entry in stats.items()}
        return calls

    def wait_replicated(self, port: int, timeout: float = 10.0) -> None:
        """Wait until the replica of the master on ``port`` has all its writes.

        Replication is asynchronous: a master killed before its replica caught
        up takes its last writes with it (Redis's documented trade-off).
        """

        def caught_up() -> bool:
            with self.nodes[port].client() as client:
                info = client.info("replication")
            replicas = [v for k, v in info.items() if k.startswith("slave")]
            return bool(replicas) and all(
                isinstance(r, dict)
                and int(r["offset"]) >= int(info["master_repl_offset"])
                for r in replicas
            )

        self._wait(time.monotonic() + timeout, caught_up, "the replica caught up")

    def kill(self, port: int) -> None:
        """SIGKILL the node on ``port`` (by its PID)."""
        _kill_process(self.nodes[port].process)

    def wait_for_failover(self, killed: int, timeout: float = 30.0) -> None:
        """Wait until a replica of the killed master serves its slots."""
        deadline = time.monotonic() + timeout
        self._wait(
            deadline,
            lambda: killed not in self.masters() and self.serves_every_slot(),
            f"a replica takes over from master {killed}",
        )

    def close(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL) and delete the directory."""
        for node in self.nodes.values():
            _stop_process(node.process, 5.0)
        self._directory.cleanup()


def cluster_executables() -> tuple[str, str] | None:
    """Return redis-server and redis-cli, if both are installed."""
    server, cli = redis_server_executable(), shutil.which("redis-cli")
    if server is None or cli is None:
        return None
    return server, cli


def start_cluster() -> PrivateRedisCluster:
    """Start a cluster, or fail the test saying what to install."""
    executables = cluster_executables()
    if executables is None:
        pytest.fail(
            "redis-server and redis-cli are needed for the Redis Cluster tests: "
            "install them (apt-get install redis-server redis-tools)."
        )
    return PrivateRedisCluster(*executables).start()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[PrivateRedisCluster]:
    """A 3-master, 3-replica cluster shared by the tests that do not break it."""
    cluster = start_cluster()
    yield cluster
    cluster.close()


@pytest.fixture
def private_redis_cluster() -> Iterator[PrivateRedisCluster]:
    """A cluster of the test's own, which it may break (kill a master)."""
    cluster = start_cluster()
    yield cluster
    cluster.close()


def cluster_broadcast_settings(
    cluster: PrivateRedisCluster, **options: Any
) -> dict[str, Any]:
    """``WS_BROADCAST`` for ``cluster``, with a prefix of the test's own."""
    options.setdefault("PREFIX", f"test-{uuid.uuid4().hex[:8]}")
    options.setdefault("TIMEOUT", 2)
    options["CLUSTER"] = True
    return {
        "BACKEND": "django_ws.broadcast.RedisBackend",
        "LOCATION": cluster.url,
        "OPTIONS": options,
    }


@pytest.fixture
def redis_cluster_broadcast(redis_cluster: PrivateRedisCluster) -> dict[str, Any]:
    """The ``WS_BROADCAST`` of a RedisBackend on the shared cluster.

    A backend contract suite can take it as one more parameter beside the
    Memory, Redis and PostgreSQL configurations.
    """
    return cluster_broadcast_settings(redis_cluster)
