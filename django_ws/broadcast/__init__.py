"""Groups and broadcast: ``broadcast``, ``broadcast_sync`` and ``presence``.

The backend comes from ``WS_BROADCAST`` (like ``CACHES``): ``MemoryBackend`` in
one process by default, ``RedisBackend`` or ``PostgresBackend`` across processes
and machines.
``broadcast_on_commit`` waits for the database transaction to commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from ..conf import clears_on_settings_change, get_settings
from ..operations.backend_events import backend_created
from .base import BaseBackend, Member, Presence, check_group, exclusion_ids, send_event
from .history import HistoryRules
from .memory import MemoryBackend
from .transactional import publish_on_commit

__all__ = [
    "BaseBackend",
    "Member",
    "MemoryBackend",
    "PostgresBackend",
    "Presence",
    "RedisBackend",
    "broadcast",
    "broadcast_on_commit",
    "broadcast_sync",
    "get_backend",
    "position",
    "position_sync",
    "presence",
]

_backend: BaseBackend | None = None


def _forget_backend() -> None:
    global _backend
    _backend = None


clears_on_settings_change(_forget_backend)


def __getattr__(name: str) -> Any:
    if name == "RedisBackend":  # imported on demand: redis is an optional extra
        from .redis import RedisBackend

        return RedisBackend
    if name == "PostgresBackend":  # imported on demand: psycopg is an optional extra
        from .postgres import PostgresBackend

        return PostgresBackend
    raise AttributeError(name)


def create_backend(config: dict[str, Any]) -> BaseBackend:
    """Build the backend that ``config`` (a ``WS_BROADCAST`` dict) names."""
    path = config["BACKEND"]
    try:
        backend_class = import_string(path)
    except ImportError as error:
        raise ImproperlyConfigured(
            f"WS_BROADCAST['BACKEND'] is {path!r}, which cannot be imported ({error}). "
            "Use 'django_ws.broadcast.MemoryBackend', "
            "'django_ws.broadcast.RedisBackend' (pip install 'django-ws[redis]') or "
            "'django_ws.broadcast.PostgresBackend' (pip install 'django-ws[postgres]')."
        ) from error
    if not (isinstance(backend_class, type) and issubclass(backend_class, BaseBackend)):
        raise ImproperlyConfigured(
            f"WS_BROADCAST['BACKEND'] is {path!r}, which is not a broadcast backend "
            "(a subclass of django_ws.broadcast.BaseBackend)."
        )
    backend = backend_class(config.get("LOCATION"), config.get("OPTIONS"))
    history = HistoryRules(config.get("HISTORY"))
    if history:
        backend.configure_history(history)
    backend_created(backend)  # metrics, when on
    return backend


def get_backend() -> BaseBackend:
    """Return this process's broadcast backend, built from ``WS_BROADCAST`` once."""
    global _backend
    if _backend is None:
        _backend = create_backend(get_settings().broadcast)
    return _backend


def _event(backend: BaseBackend, group: str, data: Any, raw: bool) -> dict[str, Any]:
    check_group(group)
    if raw and backend.history_policy(group) is not None:
        raise TypeError(
            f"Group {group!r} keeps history, which carries JSON data only: "
            "broadcast it without raw=True."
        )
    return send_event(data, raw=raw)


async def broadcast(
    group: str,
    data: Any,
    exclude: Member | Iterable[Member] | None = None,
    *,
    raw: bool = False,
) -> None:
    """Send ``data`` to every member of ``group`` in every process.

    ``data`` is JSON-encoded once; with ``raw=True`` a ``str`` goes as a text frame
    and ``bytes`` as a binary frame. ``exclude`` names connections to skip. A group
    with no members is a no-op (one with history still keeps the message). Raises ``BroadcastError`` when the backend cannot
    carry it to other processes within its timeout (members in this process still
    get it). A group with history (``WS_BROADCAST["HISTORY"]``) takes JSON data
    only: ``raw=True`` raises ``TypeError``.
    """
    backend = get_backend()
    await backend.publish(group, _event(backend, group, data, raw), exclusion_ids(exclude))


def broadcast_sync(
    group: str,
    data: Any,
    exclude: Member | Iterable[Member] | None = None,
    *,
    raw: bool = False,
) -> None:
    """``broadcast`` for sync code: views, signals, management commands, Celery."""
    backend = get_backend()
    backend.publish_sync(group, _event(backend, group, data, raw), exclusion_ids(exclude))


def broadcast_on_commit(
    group: str,
    data: Any,
    exclude: Member | Iterable[Member] | None = None,
    *,
    raw: bool = False,
    using: str | None = None,
) -> None:
    """``broadcast_sync`` once the current transaction of ``using`` commits.

    Never on rollback; at once outside a transaction, as ``transaction.on_commit``.
    ``data`` is encoded now, so changing it afterwards changes nothing and an
    unencodable value raises here. A ``BroadcastError`` at commit time is logged
    (the commit has happened), not raised.
    """
    event = _event(get_backend(), group, data, raw)
    excluded = exclusion_ids(exclude)

    def publish() -> None:
        get_backend().publish_sync(group, event, excluded)

    publish_on_commit(group, publish, using)


async def presence(group: str) -> Presence:
    """Return the live members of ``group`` across processes (count and users)."""
    check_group(group)
    return await get_backend().presence(group)


def _history_backend(group: str) -> BaseBackend:
    check_group(group)
    backend = get_backend()
    if backend.history_policy(group) is None:
        raise ValueError(
            f"Group {group!r} keeps no history: add a pattern that matches it to "
            "WS_BROADCAST['HISTORY']."
        )
    return backend


async def position(group: str) -> tuple[str, int]:
    """Return the ``(epoch, offset)`` of ``group``'s last message (offset 0: none).

    A page rendered at this position lets its socket offer it in ``ws_since`` and
    get exactly the messages that came after. Raises ``ValueError`` for a group
    without history.
    """
    return await _history_backend(group).position(group)


def position_sync(group: str) -> tuple[str, int]:
    """``position`` for sync code (views)."""
    return _history_backend(group).position_sync(group)
