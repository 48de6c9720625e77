"""Broadcast metrics: publishes, deliveries and their fan-out time, errors, recoveries.

``instrument`` wraps the public methods of the backend object that
``broadcast.create_backend`` made (``publish``, ``publish_sync``, ``deliver``,
``deliver_history``, ``recover``), so every backend is counted the same way
without knowing the metrics. A broker backend's own troubles (its subscription
lost, a history read failed, a gap repaired or lost) reach ``MetricsEvents``,
which ``instrument`` installs as the backend's ``events`` observer
(``broadcast.events.BackendEvents``): counted whatever the log level.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from ..broadcast.events import BackendEvents, GapOutcome

if TYPE_CHECKING:
    from ..broadcast.base import BaseBackend
    from .metrics import Metrics

class MetricsEvents(BackendEvents):
    """Count a backend's reconnects, failed operations and history gaps."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def reconnecting(self) -> None:
        self.metrics.backend_reconnects.inc()

    def failed(self, operation: str) -> None:
        self.metrics.backend_errors.labels(operation).inc()

    def gap(self, outcome: GapOutcome) -> None:
        self.metrics.backend_gap_repairs.labels(outcome).inc()


def backend_created(backend: BaseBackend) -> None:
    """Instrument ``backend`` when metrics are on (``create_backend`` calls it)."""
    from .config import get_operations_settings

    if get_operations_settings().metrics:
        from .metrics import get_metrics

        instrument(backend, get_metrics())


def instrument(backend: BaseBackend, metrics: Metrics) -> None:
    """Wrap ``backend``'s public methods to count what they do."""
    published = metrics.broadcasts_published
    deliveries = metrics.broadcast_deliveries
    fan_out = metrics.broadcast_delivery_seconds
    errors = metrics.backend_errors
    recoveries = metrics.recoveries
    publish, publish_sync = backend.publish, backend.publish_sync
    deliver, deliver_history = backend.deliver, backend.deliver_history
    recover = backend.recover
    backend.events = MetricsEvents(metrics)

    @functools.wraps(publish)
    async def counted_publish(*args: Any, **kwargs: Any) -> None:
        published.inc()
        try:
            await publish(*args, **kwargs)
        except Exception:
            errors.labels("publish").inc()
            raise

    @functools.wraps(publish_sync)
    def counted_publish_sync(*args: Any, **kwargs: Any) -> None:
        published.inc()
        try:
            publish_sync(*args, **kwargs)
        except Exception:
            errors.labels("publish").inc()
            raise

    @functools.wraps(deliver)
    def counted_deliver(
        group: str, message: dict[str, Any], exclude: frozenset[str] = frozenset()
    ) -> int:
        started = time.perf_counter()
        delivered = deliver(group, message, exclude)
        if delivered:
            fan_out.observe(time.perf_counter() - started)
            deliveries.inc(delivered)
        return delivered

    @functools.wraps(deliver_history)
    def counted_deliver_history(
        group: str, offset: int, message: dict[str, Any], exclude: frozenset[str] = frozenset()
    ) -> None:
        members = backend.groups.get(group)
        if not members:
            deliver_history(group, offset, message, exclude)
            return
        count = sum(1 for member in members if member.connection_id not in exclude)
        started = time.perf_counter()
        deliver_history(group, offset, message, exclude)
        fan_out.observe(time.perf_counter() - started)
        deliveries.inc(count)

    @functools.wraps(recover)
    async def counted_recover(*args: Any, **kwargs: Any) -> Any:
        recovery = await recover(*args, **kwargs)
        recoveries.labels("true" if recovery.recovered else "false").inc()
        return recovery

    # Instance attributes: the backend's own calls (self.deliver...) find them too.
    backend.publish = counted_publish  # type: ignore[method-assign]
    backend.publish_sync = counted_publish_sync  # type: ignore[method-assign]
    backend.deliver = counted_deliver  # type: ignore[method-assign]
    backend.deliver_history = counted_deliver_history  # type: ignore[method-assign]
    backend.recover = counted_recover  # type: ignore[method-assign]
