"""The per-group history log and the ``HISTORY`` rules (``broadcast/history.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ws.broadcast.history import (
    HistoryLog,
    HistoryPolicy,
    HistoryRules,
    HistoryStore,
)

POLICY = HistoryPolicy(size=3, ttl=10)


def event(epoch: str, offset: int) -> dict[str, Any]:
    return {"type": "websocket.send", "text": f"{epoch}:{offset}"}


def filled(count: int, now: float = 0) -> HistoryLog:
    log = HistoryLog(POLICY, now)
    for _ in range(count):
        log.append(event, now)
    return log


def offsets(log: HistoryLog, offset: int, now: float = 0) -> list[int] | None:
    recovery = log.since(log.epoch, offset, now)
    return [entry.offset for entry in recovery.entries] if recovery.recovered else None


def test_offsets_start_at_one_and_grow_by_one() -> None:
    log = HistoryLog(POLICY, 0)
    assert [log.append(event, 0).offset for _ in range(3)] == [1, 2, 3]
    assert log.offset == 3


def test_an_entry_is_built_with_its_epoch_and_offset() -> None:
    log = HistoryLog(POLICY, 0)
    entry = log.append(event, 0)
    assert entry.event == {"type": "websocket.send", "text": f"{log.epoch}:1"}


def test_since_returns_every_later_message_in_order() -> None:
    assert offsets(filled(3), 0) == [1, 2, 3]
    assert offsets(filled(3), 1) == [2, 3]


def test_since_the_current_offset_is_recovered_with_nothing_to_replay() -> None:
    log = filled(3)
    recovery = log.since(log.epoch, 3, 0)
    assert (recovery.recovered, recovery.offset, recovery.entries) == (True, 3, ())


def test_size_trims_the_oldest_so_a_longer_gap_is_not_recovered() -> None:
    log = filled(5)
    assert [entry.offset for entry in log.entries] == [3, 4, 5]
    assert offsets(log, 2) == [3, 4, 5]
    recovery = log.since(log.epoch, 1, 0)
    assert (recovery.recovered, recovery.offset, recovery.entries) == (False, 5, ())


def test_messages_older_than_the_ttl_are_dropped() -> None:
    log = HistoryLog(POLICY, 0)
    log.append(event, 0)
    log.append(event, 5)
    assert offsets(log, 0, now=12) is None  # the first one expired at 10
    assert offsets(log, 1, now=12) == [2]


def test_another_epoch_is_not_recovered() -> None:
    log = filled(2)
    recovery = log.since("elsewhere", 1, 0)
    assert (recovery.recovered, recovery.epoch, recovery.offset) == (False, log.epoch, 2)


def test_an_offset_from_the_future_is_not_recovered() -> None:
    log = filled(2)
    assert log.since(log.epoch, 3, 0).recovered is False


def test_a_ttl_without_a_message_starts_a_new_epoch_at_zero() -> None:
    log = filled(2)
    epoch = log.epoch
    assert log.append(event, 10.5).offset == 1
    assert log.epoch != epoch


def test_a_new_log_has_a_new_epoch() -> None:
    assert HistoryLog(POLICY, 0).epoch != HistoryLog(POLICY, 0).epoch


def test_the_store_replaces_an_expired_log_and_sweeps_them() -> None:
    now = [0.0]
    store = HistoryStore(lambda: now[0])
    first = store.log("room", POLICY)
    assert store.log("room", POLICY) is first
    now[0] = 11
    assert store.log("room", POLICY) is not first
    store.log("other", POLICY)
    store.sweep(30)
    assert store.logs == {}


def test_the_store_sweeps_quiet_logs_as_it_is_used() -> None:
    now = [0.0]
    store = HistoryStore(lambda: now[0])
    for index in range(1000):
        store.log(f"quiet-{index}", POLICY)
    now[0] = 11
    for _ in range(30):
        store.log("busy", POLICY)
    assert list(store.logs) == ["busy"]


def test_rules_match_in_order_first_pattern_wins() -> None:
    rules = HistoryRules(
        {"room-vip-*": {"SIZE": 5, "TTL": 1}, "room-*": {"SIZE": 200, "TTL": 600}}
    )
    assert rules.policy("room-vip-1") == HistoryPolicy(5, 1)
    assert rules.policy("room-1") == HistoryPolicy(200, 600)
    assert rules.policy("lobby") is None


def test_no_rules_is_false() -> None:
    assert not HistoryRules(None)
    assert not HistoryRules({})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            ["room-*"],
            "WS_BROADCAST['HISTORY'] must be a dict of group name patterns, e.g. "
            "{'room-*': {'SIZE': 200, 'TTL': 600}}; got ['room-*'].",
        ),
        (
            {"": {"SIZE": 1, "TTL": 1}},
            "WS_BROADCAST['HISTORY'] keys must be non-empty fnmatch patterns such as "
            "'room-*', got ''.",
        ),
        (
            {"room-*": {"SIZE": 1}},
            "WS_BROADCAST['HISTORY']['room-*'] must be a dict with exactly the keys "
            "'SIZE' and 'TTL', e.g. {'SIZE': 200, 'TTL': 600}; got {'SIZE': 1}.",
        ),
        (
            {"room-*": {"SIZE": 0, "TTL": 1}},
            "WS_BROADCAST['HISTORY']['room-*']['SIZE'] must be a positive int "
            "(messages kept), got 0.",
        ),
        (
            {"room-*": {"SIZE": 2.5, "TTL": 1}},
            "WS_BROADCAST['HISTORY']['room-*']['SIZE'] must be a positive int "
            "(messages kept), got 2.5.",
        ),
        (
            {"room-*": {"SIZE": True, "TTL": 1}},
            "WS_BROADCAST['HISTORY']['room-*']['SIZE'] must be a positive int "
            "(messages kept), got True.",
        ),
        (
            {"room-*": {"SIZE": 1, "TTL": -1}},
            "WS_BROADCAST['HISTORY']['room-*']['TTL'] must be a positive number of "
            "seconds, got -1.",
        ),
        (
            {"room-*": {"SIZE": 1, "TTL": "600"}},
            "WS_BROADCAST['HISTORY']['room-*']['TTL'] must be a positive number of "
            "seconds, got '600'.",
        ),
        (
            {"room-*": {"SIZE": 1, "TTL": float("nan")}},
            "WS_BROADCAST['HISTORY']['room-*']['TTL'] must be a positive number of "
            "seconds, got nan.",
        ),
    ],
)
def test_bad_rules_say_what_to_change(config: Any, message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as excinfo:
        HistoryRules(config)
    assert str(excinfo.value) == message
