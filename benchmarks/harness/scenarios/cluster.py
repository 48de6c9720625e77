"""Broadcast across 2 processes on a Redis Cluster, beside one Redis and the floor."""

from __future__ import annotations

import contextlib
from typing import Any

from ..cluster import RedisClusterServers
from ..context import Context
from ..loadgen import run_loadgen
from ..targets import CLUSTER_BROADCAST_TARGETS, Target
from .base import Recorder, Scenario, interleaved
from .broadcast import members_args, receipts

#: What the runner itself and the servers' upkeep run, not the broadcasts.
NOT_BROADCAST = (
    *("config", "info", "ping", "replconf"),
    *("cluster", "command", "hello", "client"),
)


def per_broadcast(
    after: dict[str, dict[str, int]], rounds: int
) -> tuple[dict[str, dict[str, float]], float]:
    """Return each node's commands per broadcast, and their sum over the nodes."""
    nodes: dict[str, dict[str, float]] = {}
    for node, calls in after.items():
        kept = {
            name: round(count / rounds, 2)
            for name, count in sorted(calls.items())
            if name.split("|")[0] not in NOT_BROADCAST and count
        }
        if kept:
            nodes[node] = kept
    total = round(sum(sum(kept.values()) for kept in nodes.values()), 2)
    return nodes, total


def run_broadcast_cluster(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params
    members = 2 * p.redis_members_per_server
    rounds = p.broadcast_rounds + p.broadcast_warmup_rounds
    with contextlib.ExitStack() as stack:
        cluster = None
        if any(target.name == "djangows-cluster" for target in targets):
            cluster = stack.enter_context(RedisClusterServers(ctx.workdir))
            ctx.cluster_url = cluster.url
            stack.callback(setattr, ctx, "cluster_url", None)

        def reset() -> None:
            if cluster is not None:
                for port in cluster.masters():
                    cluster.cli(port, "FLUSHALL")
                cluster.reset_stats()
            assert ctx.redis is not None
            ctx.redis.cli("FLUSHALL")
            ctx.redis.cli("CONFIG", "RESETSTAT")

        def stats(target: Target) -> dict[str, dict[str, int]]:
            if target.name == "djangows-cluster":
                assert cluster is not None
                masters = cluster.masters()
                return {
                    ("master " if port in masters else "replica ") + str(port): calls
                    for port, calls in cluster.commandstats().items()
                }
            assert ctx.redis is not None
            return {"redis": ctx.redis.commandstats()}

        def measure(target: Target) -> None:
            reset()
            with ctx.serve(target) as a, ctx.serve(target) as b:
                after: dict[str, dict[str, int]] = {}

                def at_event(event: dict[str, Any]) -> None:
                    # count from all members joined to all broadcasts done
                    if event["event"] == "ready":
                        if target.name == "djangows-cluster":
                            assert cluster is not None
                            cluster.reset_stats()
                        else:
                            assert ctx.redis is not None
                            ctx.redis.cli("CONFIG", "RESETSTAT")
                    elif event["event"] == "done":
                        after.update(stats(target))

                args = members_args(ctx, target, [a.port, b.port], members)
                res = run_loadgen(args, 180, on_event=at_event)
                a.check_alive()
                b.check_alive()
            nodes, total = per_broadcast(after, rounds)
            rec.add(
                f"2 processes x {p.redis_members_per_server:,} members",
                target,
                res["median_ms"],
                **receipts(res),
                commands_per_broadcast=total,
                nodes_with_commands=len(nodes),
                commands_per_node=nodes,
            )

        interleaved(rec, targets, p.broadcast_runs, measure)


BROADCAST_CLUSTER = Scenario(
    "broadcast-cluster",
    "Broadcast across 2 processes on a Redis Cluster",
    "ms from trigger to last receipt",
    "ms",
    False,
    CLUSTER_BROADCAST_TARGETS,
    run_broadcast_cluster,
    "As *Broadcast across 2 processes through Redis*, with django-ws also on a "
    "Redis Cluster of 3 masters and 3 replicas that the runner starts on free ports "
    "(pinned with the load generator, like the single Redis), configured with "
    "`OPTIONS['CLUSTER']`. Broker commands are counted per node (`CONFIG RESETSTAT` "
    "on every node once all members are connected, `INFO commandstats` after the "
    "last broadcast), divided by the broadcasts (warm-up included); the runner's "
    "and the connections' own commands (`config`, `info`, `ping`, `cluster`, "
    "`command`, `hello`, `client`, replication's `replconf`) are left out. A "
    "replica's count is what replication applied. The raw floor and django-ws on "
    "one Redis run in the same invocation for the ratios.",
    needs_redis=True,
    runs_param="broadcast_runs",
)
