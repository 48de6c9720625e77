"""Prometheus metrics (the ``metrics`` extra), and the view that exposes them.

The metrics are made once per process in ``prometheus_client``'s default
registry. With ``PROMETHEUS_MULTIPROC_DIR`` set (several uvicorn workers)
prometheus_client writes them to files there and ``metrics_view`` adds up every
worker's; the open-connections gauge then sums live workers only (``livesum``).
Label values are bounded: route patterns, status and close codes, fixed words.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from django.http import HttpRequest, HttpResponse

__all__ = ["Metrics", "RouteMetrics", "get_metrics", "metrics_view"]

#: Histogram buckets for a broadcast's fan-out in one process, in seconds.
DELIVERY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)


class RouteMetrics:
    """The label children of one route, bound once so a message costs no lookup.

    Frames and bytes are added to plain ``pending_*`` integers, which ``flush``
    moves into the counters (when a socket of the route ends, and every second):
    a message then costs two integer additions instead of two locked increments.
    """

    __slots__ = (
        "open",
        "accepted",
        "messages_received",
        "messages_sent",
        "bytes_received",
        "bytes_sent",
        "route",
        "pending_messages_in",
        "pending_messages_out",
        "pending_bytes_in",
        "pending_bytes_out",
    )

    def __init__(self, metrics: Metrics, route: str) -> None:
        self.route = route
        self.open = metrics.connections_open.labels(route)
        self.accepted = metrics.connections_accepted.labels(route)
        self.messages_received = metrics.messages_received.labels(route)
        self.messages_sent = metrics.messages_sent.labels(route)
        self.bytes_received = metrics.bytes_received.labels(route)
        self.bytes_sent = metrics.bytes_sent.labels(route)
        self.pending_messages_in = self.pending_messages_out = 0
        self.pending_bytes_in = self.pending_bytes_out = 0

    def flush(self) -> None:
        """Move the pending frame and byte counts into the counters."""
        if self.pending_messages_in:
            count, self.pending_messages_in = self.pending_messages_in, 0
            size, self.pending_bytes_in = self.pending_bytes_in, 0
            self.messages_received.inc(count)
            self.bytes_received.inc(size)
        if self.pending_messages_out:
            count, self.pending_messages_out = self.pending_messages_out, 0
            size, self.pending_bytes_out = self.pending_bytes_out, 0
            self.messages_sent.inc(count)
            self.bytes_sent.inc(size)


class Metrics:
    """Every django-ws metric; names and types are listed in ``docs/operations.md``."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.connections_open = Gauge(
            "django_ws_connections_open",
            "WebSocket connections open now.",
            ["route"],
            multiprocess_mode="livesum",
        )
        self.connections_accepted = Counter(
            "django_ws_connections_accepted", "Handshakes accepted.", ["route"]
        )
        self.connections_refused = Counter(
            "django_ws_connections_refused",
            "Handshakes refused, by HTTP status (route '' when no route matched).",
            ["route", "status"],
        )
        self.connections_closed = Counter(
            "django_ws_connections_closed",
            "Accepted connections that ended, by close code.",
            ["route", "code"],
        )
        self.messages_received = Counter(
            "django_ws_messages_received", "Frames received from clients.", ["route"]
        )
        self.messages_sent = Counter(
            "django_ws_messages_sent", "Frames handed to the server to send.", ["route"]
        )
        self.bytes_received = Counter(
            "django_ws_received_bytes",
            "Payload bytes received (UTF-8 for text frames).",
            ["route"],
        )
        self.bytes_sent = Counter(
            "django_ws_sent_bytes", "Payload bytes handed to the server to send.", ["route"]
        )
        self.send_queue_overflows = Counter(
            "django_ws_send_queue_overflows",
            "Connections closed with 1008 because their send queue was full.",
            ["route"],
        )
        self.rate_limit_closes = Counter(
            "django_ws_rate_limit_closes",
            "Connections closed with 1008 for exceeding WS_MAX_MESSAGES_PER_SECOND.",
            ["route"],
        )
        self.broadcasts_published = Counter(
            "django_ws_broadcasts_published", "Broadcasts published from this process."
        )
        self.broadcast_deliveries = Counter(
            "django_ws_broadcast_deliveries",
            "Broadcast messages handed to a member connection in this process.",
        )
        self.broadcast_delivery_seconds = Histogram(
            "django_ws_broadcast_delivery_seconds",
            "Time for this process to hand one broadcast to all its local members.",
            buckets=DELIVERY_BUCKETS,
        )
        self.backend_errors = Counter(
            "django_ws_backend_errors",
            "Broadcast backend operations that failed, by operation.",
            ["operation"],
        )
        self.backend_reconnects = Counter(
            "django_ws_backend_reconnects",
            "Times the backend lost its subscription connection and reconnected.",
        )
        self.backend_gap_repairs = Counter(
            "django_ws_backend_gap_repairs",
            "History gaps seen by the backend, by outcome (repaired or lost).",
            ["outcome"],
        )
        self.recoveries = Counter(
            "django_ws_recoveries",
            "Recoveries of a history group on join (ws_since), by result.",
            ["recovered"],
        )
        self._routes: dict[str, RouteMetrics] = {}

    def flush(self) -> None:
        """Move every route's pending counts into the counters (on the loop's thread)."""
        for bound in list(self._routes.values()):
            bound.flush()

    def route(self, route: str) -> RouteMetrics:
        """Return the bound children of ``route`` (made once per route)."""
        bound = self._routes.get(route)
        if bound is None:
            bound = self._routes[route] = RouteMetrics(self, route)
        return bound


@functools.lru_cache(maxsize=None)
def get_metrics() -> Metrics:
    """Return this process's metrics (made on first use: registering twice fails)."""
    return Metrics()


def _registry() -> Any:
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Answer a Prometheus scrape with every metric of this process (or all workers).

    Put it in ``urls.py``; it shows no personal data, but restrict who reaches it
    (a private port, the proxy's allow-list) as for any internal endpoint.
    """
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    get_metrics()  # a scrape before the first socket still lists the metrics
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
