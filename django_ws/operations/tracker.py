"""The per-process tracker: counts what passes a connection, enforces the limits.

``attach`` wraps a connection's ASGI ``receive`` and ``send`` once, at
construction: the wrappers count frames and bytes (metrics and the live view)
and see the handshake's outcome (``websocket.accept``, a denial response, a close
before accept). ``admit`` runs between the middleware and the accept, when the
user is known. ``finished`` runs once at the very end of ``Lifecycle.run``,
whichever way the connection ended, so every count it took is given back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..exceptions import DenyConnection
from . import stores
from .client_address import client_address
from .config import OperationsSettings
from .routes import route_label

if TYPE_CHECKING:
    from .live import LiveView
    from .metrics import Metrics, RouteMetrics

logger = logging.getLogger("django_ws")

#: A connection: ``Lifecycle`` (not imported: the lifecycle imports ``hooks``).
Lifecycle = Any

#: Pending frame counts move into the metrics every second under a server that
#: runs the lifespan protocol, at each close, and whenever a route has this many.
FLUSH_INTERVAL = 1.0
FLUSH_EVERY = 100
#: The close reasons of ``closing.py`` that metrics count on their own.
SEND_QUEUE_FULL = "Client too slow: send queue full"
RATE_LIMITED = "Message rate limit exceeded"

Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]


def payload_size(message: dict[str, Any]) -> int:
    """Return the payload bytes of a receive or send event (UTF-8 for text)."""
    text = message.get("text")
    if text is not None:
        return len(text) if text.isascii() else len(text.encode())
    data = message.get("bytes")
    return len(data) if data else 0


class ConnectionStats:
    """What the tracker knows of one connection."""

    __slots__ = (
        "ws",
        "route",
        "since",
        "messages_in",
        "messages_out",
        "bytes_in",
        "bytes_out",
        "accepted",
        "refused_status",
        "limit_keys",
        "bound",
    )

    def __init__(self, ws: Lifecycle, route: str, bound: RouteMetrics | None) -> None:
        self.ws = ws
        self.route = route
        self.since = 0.0
        self.messages_in = self.messages_out = self.bytes_in = self.bytes_out = 0
        self.accepted = False
        self.refused_status: int | None = None
        self.limit_keys: tuple[stores.LimitKey, ...] = ()
        self.bound = bound


class Tracker:
    """Metrics, live view and connection limits for the connections of this process."""

    def __init__(self, wanted: OperationsSettings) -> None:
        self.settings = wanted
        self.metrics: Metrics | None = None
        if wanted.metrics:
            from .metrics import get_metrics

            self.metrics = get_metrics()
        #: Every connection between construction and the end of its lifecycle.
        self.connections: dict[Lifecycle, ConnectionStats] = {}
        self.open_by_route: Counter[str] = Counter()
        #: This process's sockets per limit key: restated to the store each beat.
        self.limit_counts: Counter[tuple[str, str]] = Counter()
        self.live: LiveView | None = None
        if wanted.live_view:
            from .live import LiveView

            self.live = LiveView(self)
        self._background: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[Any]] = set()

    # The calls the lifecycle makes ---------------------------------------------

    def attach(self, ws: Lifecycle, receive: Receive, send: Send) -> tuple[Receive, Send]:
        route = route_label(type(ws))
        bound = self.metrics.route(route) if self.metrics is not None else None
        stats = self.connections[ws] = ConnectionStats(ws, route, bound)

        async def counted_receive() -> Any:
            message = await receive()
            if message["type"] == "websocket.receive":
                size = payload_size(message)
                stats.messages_in += 1
                stats.bytes_in += size
                if bound is not None:
                    bound.pending_messages_in += 1
                    bound.pending_bytes_in += size
                    if bound.pending_messages_in >= FLUSH_EVERY:
                        bound.flush()
            return message

        def counted_send(message: Any) -> Awaitable[None]:
            kind = message["type"]
            if kind == "websocket.send":
                size = payload_size(message)
                stats.messages_out += 1
                stats.bytes_out += size
                if bound is not None:
                    bound.pending_messages_out += 1
                    bound.pending_bytes_out += size
                    if bound.pending_messages_out >= FLUSH_EVERY:
                        bound.flush()
            elif kind == "websocket.accept":
                self._accepted(stats)
            elif kind == "websocket.http.response.start":
                stats.refused_status = message["status"]
            elif kind == "websocket.close" and not stats.accepted:
                if stats.refused_status is None:
                    stats.refused_status = 403  # a close before accept is a 403
            return send(message)

        return counted_receive, counted_send

    async def admit(self, ws: Lifecycle) -> None:
        stats = self.connections.get(ws)
        if stats is None or not self.settings.limits:
            return
        keys = self._limit_keys(ws)
        if not keys:
            return
        try:
            full = await self.store().acquire(keys)
        except Exception as error:  # the store is away: serve rather than refuse all
            logger.warning("Connection limits not checked for %r: %s", ws, error)
            self.count_backend_error("limits")
            return
        if full is not None:
            kind, value, limit = full
            setting = f"WS_MAX_CONNECTIONS_PER_{'USER' if kind == 'user' else 'IP'}"
            logger.info(
                "Refused %r: %s %s already has %d sockets open (%s)",
                ws, kind, value, limit, setting,
            )
            raise DenyConnection(429, f"Too many connections ({setting})")
        stats.limit_keys = keys
        for kind, value, _ in keys:
            self.limit_counts[(kind, value)] += 1
        self.ensure_background()

    def finished(self, ws: Lifecycle) -> None:
        stats = self.connections.pop(ws, None)
        if stats is None:
            return
        metrics = self.metrics
        if stats.accepted:
            self.open_by_route[stats.route] -= 1
            if not self.open_by_route[stats.route]:
                del self.open_by_route[stats.route]
            if metrics is not None:
                self._count_close(metrics, stats)
            if self.live is not None:
                self.live.changed()
        elif stats.refused_status is not None and metrics is not None:
            metrics.connections_refused.labels(stats.route, str(stats.refused_status)).inc()
        # The wrappers hold ``stats`` and the connection holds the wrappers: let go
        # of the connection so that it is freed at once, by reference counting.
        stats.ws = None  # type: ignore[assignment]
        if stats.limit_keys:
            for kind, value, _ in stats.limit_keys:
                key = (kind, value)
                self.limit_counts[key] -= 1
                if self.limit_counts[key] <= 0:
                    del self.limit_counts[key]
            self._spawn(self._release(stats.limit_keys))

    def refused_unrouted(self, status: int) -> None:
        if self.metrics is not None:
            self.metrics.connections_refused.labels("", str(status)).inc()

    # Accounting ------------------------------------------------------------------

    def _accepted(self, stats: ConnectionStats) -> None:
        stats.accepted = True
        stats.since = time.time()
        self.open_by_route[stats.route] += 1
        if stats.bound is not None:
            stats.bound.accepted.inc()
            stats.bound.open.inc()
        if self.live is not None:
            self.live.changed()
            self.ensure_background()

    @staticmethod
    def _count_close(metrics: Metrics, stats: ConnectionStats) -> None:
        if stats.bound is not None:
            stats.bound.flush()
        ws = stats.ws
        code = ws.close_code if ws.close_code is not None else 1006
        metrics.connections_closed.labels(stats.route, str(code)).inc()
        if stats.bound is not None:
            stats.bound.open.dec()
        if code == 1008 and ws.close_reason == SEND_QUEUE_FULL:
            metrics.send_queue_overflows.labels(stats.route).inc()
        elif code == 1008 and ws.close_reason == RATE_LIMITED:
            metrics.rate_limit_closes.labels(stats.route).inc()

    def count_backend_error(self, operation: str) -> None:
        if self.metrics is not None:
            self.metrics.backend_errors.labels(operation).inc()

    def accepted_connections(self) -> list[ConnectionStats]:
        """Return the accepted, still running connections (a copy, for iterating)."""
        return [stats for stats in list(self.connections.values()) if stats.accepted]

    # Limits ------------------------------------------------------------------------

    def _limit_keys(self, ws: Lifecycle) -> tuple[stores.LimitKey, ...]:
        wanted = self.settings
        keys: list[stores.LimitKey] = []
        if wanted.max_connections_per_user:
            user = getattr(ws, "presence_user", None)
            if user is not None:
                keys.append(("user", str(user.pk), wanted.max_connections_per_user))
        if wanted.max_connections_per_ip:
            address = client_address(ws.scope, wanted.client_ip_meta_key)
            if address:
                keys.append(("ip", address, wanted.max_connections_per_ip))
        return tuple(keys)

    async def _release(self, keys: tuple[stores.LimitKey, ...]) -> None:
        try:
            await self.store().release(keys)
        except Exception as error:  # corrected at the next refresh, or expires
            logger.debug("Releasing connection limit counts failed: %r", error)
            self.count_backend_error("limits")

    # The store and the background beat ---------------------------------------------

    def store(self) -> stores.OperationsStore:
        """Return the operations store of the broadcast backend."""
        from .backend_store import store_for_backend

        return store_for_backend(self.settings.ttl, limits=self.settings.limits)

    def ensure_background(self) -> None:
        """Start the beat that refreshes counts and snapshots (once per loop)."""
        task = self._background
        loop = asyncio.get_running_loop()
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        self._background = loop.create_task(self._beat(), name="django_ws operations")

    async def _beat(self) -> None:
        if self.live is not None:
            await self.live.start()
        interval = self.settings.ttl / 3
        while True:
            if self.limit_counts:
                try:
                    await self.store().refresh(dict(self.limit_counts))
                except Exception as error:
                    logger.debug("Refreshing connection limit counts failed: %r", error)
                    self.count_backend_error("limits")
            if self.live is not None:
                await self.live.publish_until(time.monotonic() + interval)
            else:
                await asyncio.sleep(interval)

    def _ensure_flusher(self) -> None:
        task = self._flusher
        loop = asyncio.get_running_loop()
        if task is None or task.done() or task.get_loop() is not loop:
            self._flusher = loop.create_task(
                self._flush_forever(), name="django_ws metrics"
            )

    async def _flush_forever(self) -> None:
        """Move pending frame counts into the metrics every second (a scrape's lag)."""
        metrics = self.metrics
        assert metrics is not None
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            metrics.flush()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a sync caller): the refresh corrects it
            work.close()
            return
        task = loop.create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def startup(self) -> None:
        """Start the background work on the server's loop (lifespan startup)."""
        if self.metrics is not None:
            self._ensure_flusher()
        if self.live is not None:
            self.ensure_background()  # listed in the live view before its first socket

    async def shutdown(self) -> None:
        """Stop the beat and take this process out of the live view (lifespan shutdown)."""
        tasks = [task for task in (self._background, self._flusher) if task is not None]
        self.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.live is not None:
            try:
                await asyncio.wait_for(self.store().close(), self.settings.ttl / 3)
            except Exception as error:  # its entry expires anyway
                logger.debug("Leaving the live view failed: %r", error)

    def stop(self) -> None:
        """Stop the beat (the settings changed, or the process is stopping)."""
        for task in (self._background, self._flusher):
            if task is not None and not task.done():
                try:
                    task.cancel()
                except RuntimeError:  # its loop is closed already
                    pass
        self._background = self._flusher = None
        if self.metrics is not None:
            self.metrics.flush()


def make_tracker() -> Tracker | None:
    """Return a tracker for the current settings, or ``None`` when all is off."""
    from .config import get_operations_settings

    wanted = get_operations_settings()
    if not wanted.active:
        return None
    made = Tracker(wanted)
    if wanted.limits:
        made.store()  # an unsupported backend fails now, at startup
    return made
