"""A private Redis Cluster for the benchmark: 3 masters and 3 replicas, free ports.

Like ``processes.RedisServer``, its servers are pinned to the load generator's
core (the server core stays for uvicorn), keep nothing on disk and are stopped
by PID on exit. ``commandstats()`` reads every node, so a scenario can say how
many commands a broadcast cost on each of them.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from .common import HOST, LOADGEN_CPU, BenchError, capture
from .processes import free_port, stop_process, tail

#: Cluster nodes also listen on port + 10000 (the cluster bus).
BUS_OFFSET = 10000


def _free_cluster_port(taken: list[int]) -> int:
    for _ in range(100):
        port = free_port()
        if port in taken or port + BUS_OFFSET > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((HOST, port + BUS_OFFSET))
            except OSError:
                continue
        return port
    raise BenchError("no free port pair for a Redis Cluster node")


def parse_commandstats(text: str) -> dict[str, int]:
    """Return ``{command: calls}`` from ``INFO commandstats``."""
    stats = {}
    for line in text.splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line.partition(":")
            calls = dict(kv.split("=", 1) for kv in rest.split(","))["calls"]
            stats[name[len("cmdstat_") :]] = int(calls)
    return stats


class RedisClusterServers:
    """Six cluster-enabled redis-servers joined as 3 masters with a replica each."""

    def __init__(self, workdir: Path):
        self.workdir = workdir / "cluster"
        self.ports: list[int] = []
        for _ in range(6):
            self.ports.append(_free_cluster_port(self.ports))
        self.procs: list[subprocess.Popen[Any]] = []
        self.url = f"redis://{HOST}:{self.ports[0]}/0"

    def __enter__(self) -> RedisClusterServers:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        for port in self.ports:
            directory = self.workdir / str(port)
            directory.mkdir(parents=True, exist_ok=True)
            with open(directory / "redis.log", "wb") as out:
                self.procs.append(
                    subprocess.Popen(
                        [
                            *("taskset", "-c", LOADGEN_CPU, "redis-server"),
                            *("--port", str(port), "--bind", HOST),
                            *("--cluster-enabled", "yes"),
                            *("--cluster-config-file", str(directory / "nodes.conf")),
                            *("--save", "", "--appendonly", "no"),
                            *("--repl-diskless-sync-delay", "0"),
                            *("--dir", str(directory)),
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )
        self._wait(lambda: all(self.cli(p, "PING", check=False).strip() == "PONG"
                               for p in self.ports), "the nodes start")
        created = capture(
            [
                *("redis-cli", "--cluster", "create"),
                *(f"{HOST}:{port}" for port in self.ports),
                *("--cluster-replicas", "1", "--cluster-yes"),
            ],
            60,
        )
        if created.returncode:
            raise BenchError(f"redis-cli --cluster create: {created.stdout[-400:]}")
        self._wait(self._ready, "every slot is served and every replica in sync")

    def _wait(self, condition: Any, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        log = tail(self.workdir / str(self.ports[0]) / "redis.log")
        raise BenchError(f"Redis Cluster: timed out until {what}: {log}")

    def _ready(self) -> bool:
        replicas = 0
        for port in self.ports:
            if "cluster_state:ok" not in self.cli(port, "CLUSTER", "INFO", check=False):
                return False
            info = self.cli(port, "INFO", "replication", check=False)
            if "role:slave" in info:
                if "master_link_status:up" not in info:
                    return False
                replicas += 1
        return replicas == 3

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            stop_process(proc)

    def cli(self, port: int, *args: str, check: bool = True) -> str:
        out = capture(["redis-cli", "-h", HOST, "-p", str(port), *args], 10)
        if check and out.returncode:
            raise BenchError(f"redis-cli -p {port} {' '.join(args)}: {out.stderr}")
        return out.stdout

    def masters(self) -> list[int]:
        return [
            port
            for port in self.ports
            if "role:master" in self.cli(port, "INFO", "replication")
        ]

    def reset_stats(self) -> None:
        for port in self.ports:
            self.cli(port, "CONFIG", "RESETSTAT")

    def commandstats(self) -> dict[int, dict[str, int]]:
        """Return every node's ``{command: calls}``."""
        return {
            port: parse_commandstats(self.cli(port, "INFO", "commandstats"))
            for port in self.ports
        }
