"""How often and how long each scenario measures: the full run and ``--smoke``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Params:
    runs: int = 5
    idle_runs: int = 3
    broadcast_runs: int = 5
    pingpong_connections: tuple[int, ...] = (1, 50)
    pingpong_duration: float = 5.0
    pingpong_warmup: float = 1.0
    churn_workers: int = 20
    churn_duration: float = 5.0
    churn_warmup: float = 1.0
    idle_counts: tuple[int, ...] = (2000, 10000)
    idle_settle: float = 3.0
    broadcast_members: tuple[int, ...] = (1000, 2000)
    broadcast_rounds: int = 15
    broadcast_warmup_rounds: int = 3
    redis_members_per_server: int = 500
    sync_calls: int = 5000
    sync_warmup: int = 200
    history_members: int = 1000
    history_missed: int = 1000  # within the targets' history SIZE (1,000)
    history_repeats: int = 5  # recoveries and fresh joins per run
    history_stored: int = 10000  # messages for the memory per stored message
    live_members: int = 1000


SMOKE = Params(
    runs=1,
    idle_runs=1,
    broadcast_runs=1,
    pingpong_connections=(1, 10),
    pingpong_duration=0.3,
    pingpong_warmup=0.1,
    churn_workers=5,
    churn_duration=0.3,
    churn_warmup=0.1,
    idle_counts=(100,),
    idle_settle=0.3,
    broadcast_members=(50,),
    broadcast_rounds=3,
    broadcast_warmup_rounds=1,
    redis_members_per_server=25,
    sync_calls=100,
    sync_warmup=10,
    history_members=50,
    history_missed=50,
    history_repeats=2,
    history_stored=200,
    live_members=50,
)
