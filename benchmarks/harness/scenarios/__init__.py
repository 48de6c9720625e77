"""The scenarios, in the order they run and appear in the report."""

from __future__ import annotations

from .base import Recorder, Scenario
from .broadcast import BROADCAST, BROADCAST_REDIS
from .cluster import BROADCAST_CLUSTER
from .echo import CHURN, CHURN_BROWSER, PINGPONG
from .history import HISTORY_BROADCAST, HISTORY_MEMORY, HISTORY_RECOVERY, HISTORY_REDIS
from .idle import IDLE, IDLE_ECHO
from .live import LIVE_FRAGMENT
from .postgres import BROADCAST_POSTGRES
from .scale import BROADCAST_RATE, BROADCAST_RATE_REDIS, SCALE_IDLE
from .sync import SYNC_BROADCAST

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        PINGPONG,
        CHURN,
        CHURN_BROWSER,
        IDLE,
        IDLE_ECHO,
        BROADCAST,
        BROADCAST_REDIS,
        BROADCAST_CLUSTER,
        BROADCAST_POSTGRES,
        SYNC_BROADCAST,
        HISTORY_BROADCAST,
        HISTORY_REDIS,
        HISTORY_RECOVERY,
        HISTORY_MEMORY,
        LIVE_FRAGMENT,
        SCALE_IDLE,
        BROADCAST_RATE,
        BROADCAST_RATE_REDIS,
    )
}

__all__ = ["SCENARIOS", "Recorder", "Scenario"]
