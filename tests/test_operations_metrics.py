"""Metrics through the in-process test client: each event counted once, by route.

The metrics live in prometheus_client's process-wide registry, so each test
compares values before and after what it does. The end-to-end check against a
real uvicorn process is ``tests/e2e/test_operations_e2e.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
import json

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import REGISTRY

import django_ws
import django_ws.ratelimit
from django_ws import DenyConnection, WebSocketHandler, broadcast
from django_ws.operations import config, hooks
from django_ws.operations.metrics import metrics_view
from django_ws.operations.routes import route_label
from django_ws.operations.tracker import RATE_LIMITED, SEND_QUEUE_FULL
from tests.broadcast_support import joined, room_client
from tests.core_support import client, frames
from tests.test_broadcast_redis_history import publish_unseen, use
from tests.test_history_groups import frame, recovered, say
from tests.test_limits import FakeClock, blocked_queue_lengths


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Delta:
    """Values of some samples now, to compare with later."""

    def __init__(self, *samples: tuple[str, dict[str, str]]) -> None:
        self.samples = samples
        self.before = [value(name, **labels) for name, labels in samples]

    def __call__(self) -> list[float]:
        return [value(name, **labels) - old for (name, labels), old in zip(self.samples, self.before)]


@pytest.fixture(autouse=True)
def metrics_on(settings: Any) -> Iterator[None]:
    settings.WS_METRICS = True
    yield


class Echo(WebSocketHandler):
    async def on_message(self, data: Any) -> Any:
        if isinstance(data, bytes):
            await self.send_bytes(data)
            return None
        return data


def test_metrics_are_on_when_prometheus_client_is_installed(settings: Any) -> None:
    del settings.WS_METRICS
    assert config.get_operations_settings().metrics is True


def test_with_every_feature_off_the_lifecycle_has_no_tracker(settings: Any) -> None:
    settings.WS_METRICS = False
    assert hooks.resolve() is None
    assert hooks.tracker is None


def test_asking_for_metrics_without_prometheus_client_fails_at_startup(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config, "metrics_installed", lambda: False)
    with pytest.raises(ImproperlyConfigured, match=r"pip install 'django-ws\[metrics\]'"):
        config.get_operations_settings()


async def test_a_connection_counts_its_messages_bytes_and_close() -> None:
    route = route_label(Echo)
    delta = Delta(
        ("django_ws_connections_accepted_total", {"route": route}),
        ("django_ws_connections_open", {"route": route}),
        ("django_ws_messages_received_total", {"route": route}),
        ("django_ws_messages_sent_total", {"route": route}),
        ("django_ws_received_bytes_total", {"route": route}),
        ("django_ws_sent_bytes_total", {"route": route}),
        ("django_ws_connections_closed_total", {"route": route, "code": "1000"}),
    )
    async with client(Echo).connect("/ws") as ws:
        await ws.send_text('"héllo"')  # 8 bytes in UTF-8
        assert await ws.receive_json() == "héllo"
        await ws.send_bytes(b"12345")
        assert await ws.receive_bytes() == b"12345"
        assert delta()[:2] == [1, 1]
    sent = sum(len((f.get("text") or "").encode()) + len(f.get("bytes") or b"") for f in frames(ws))
    assert delta() == [1, 0, 2, 2, 13, sent, 1]


async def test_a_refusal_is_counted_with_its_status_and_runs_no_close() -> None:
    class Refused(Echo):
        middleware = [lambda next: _deny]

    route = route_label(Refused)
    delta = Delta(
        ("django_ws_connections_refused_total", {"route": route, "status": "429"}),
        ("django_ws_connections_accepted_total", {"route": route}),
    )
    async with client(Refused).connect("/ws") as ws:
        assert (ws.accepted, ws.status) == (False, 429)
    assert delta() == [1, 0]


async def _deny(ws: Any) -> None:
    raise DenyConnection(429)


async def test_an_unknown_path_is_counted_as_refused_404_without_a_route() -> None:
    delta = Delta(("django_ws_connections_refused_total", {"route": "", "status": "404"}))
    async with client(Echo).connect("/nowhere") as ws:
        assert (ws.accepted, ws.status) == (False, 404)
    assert delta() == [1]


async def test_a_send_queue_overflow_is_counted() -> None:
    delta = Delta(("django_ws_connections_closed_total", {"route": "-", "code": "1008"}))
    overflows = sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "django_ws_send_queue_overflows"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
    _, ws = await blocked_queue_lengths(max_send_queue=3)
    assert ws.events[-1]["reason"] == SEND_QUEUE_FULL  # type: ignore[typeddict-item]
    after = sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "django_ws_send_queue_overflows"
        for sample in metric.samples
        if sample.name.endswith("_total")
    )
    assert after - overflows == 1
    assert delta() == [0]  # labelled by its route, not "-"


async def test_a_rate_limit_close_is_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(django_ws.ratelimit, "time", FakeClock())

    class Limited(Echo):
        max_messages_per_second = 1

    route = route_label(Limited)
    delta = Delta(
        ("django_ws_rate_limit_closes_total", {"route": route}),
        ("django_ws_connections_closed_total", {"route": route, "code": "1008"}),
    )
    async with client(Limited).connect("/ws") as ws:
        await ws.send_json("first")
        await ws.send_json("second")
        assert await ws.receive_json() == "first"
        assert await ws.receive_close() == 1008
        assert ws.close_reason == RATE_LIMITED
    assert delta() == [1, 1]


async def test_a_broadcast_counts_one_publish_and_a_delivery_per_member() -> None:
    class Member(WebSocketHandler):
        async def on_open(self) -> None:
            await self.join("metrics-room")

        async def on_message(self, data: Any) -> None:
            await broadcast("metrics-room", data)

    delta = Delta(
        ("django_ws_broadcasts_published_total", {}),
        ("django_ws_broadcast_deliveries_total", {}),
        ("django_ws_broadcast_delivery_seconds_count", {}),
    )
    app = client(Member)
    async with app.connect("/ws") as first, app.connect("/ws") as second:
        await first.send_json("hi")
        assert await first.receive_json() == "hi"
        assert await second.receive_json() == "hi"
    assert delta() == [1, 2, 1]


async def test_a_recovery_is_counted_by_its_result(settings: Any) -> None:
    settings.WS_BROADCAST = {
        "BACKEND": "django_ws.broadcast.MemoryBackend",
        "HISTORY": {"metrics-log": {"SIZE": 10, "TTL": 60}},
    }

    class Reader(WebSocketHandler):
        async def on_open(self) -> None:
            await self.join("metrics-log")

    delta = Delta(
        ("django_ws_recoveries_total", {"recovered": "true"}),
        ("django_ws_recoveries_total", {"recovered": "false"}),
    )
    since = {"ws_since": json.dumps({"metrics-log": ["nosuchepoch", 3]})}
    async with client(Reader).connect("/ws", query_string=since) as ws:
        recovery = await ws.receive_json()
        assert recovery["recovered"] is False
    assert delta() == [0, 1]


async def test_the_redis_backend_counts_its_repaired_and_lost_gaps(
    settings: Any, redis_url: str
) -> None:
    backend = use(settings, redis_url)
    delta = Delta(
        ("django_ws_backend_gap_repairs_total", {"outcome": "repaired"}),
        ("django_ws_backend_gap_repairs_total", {"outcome": "lost"}),
    )
    try:
        with redis.Redis.from_url(redis_url) as other:
            async with room_client().connect("/class/room-a") as member:
                await joined(member)
                epoch, _ = await django_ws.position("room-a")
                await say("room-a", 1)
                assert await member.receive_json() == frame("room-a", epoch, 1, {"n": 1})
                publish_unseen(other, backend, "room-a", 2, 3)  # read back: repaired
                await say("room-a", 4)
                for number in (2, 3, 4):
                    assert await member.receive_json() == frame(
                        "room-a", epoch, number, {"n": number}
                    )
                publish_unseen(other, backend, "room-a", *range(5, 12))  # SIZE 5: lost
                await say("room-a", 12)
                assert await member.receive_json() == recovered("room-a", False, epoch, 11, 0)
                assert await member.receive_json() == frame("room-a", epoch, 12, {"n": 12})
    finally:
        await backend.stop()
    assert delta() == [1, 1]


def test_the_metrics_view_answers_in_prometheus_text_format(rf: Any) -> None:
    response = metrics_view(rf.get("/metrics"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    body = response.content.decode()
    for name in (
        "django_ws_connections_open",
        "django_ws_connections_accepted_total",
        "django_ws_broadcast_delivery_seconds_bucket",
    ):
        assert f"# TYPE {name.removesuffix('_total').removesuffix('_bucket')}" in body
