"""Which operations store goes with the project's broadcast backend.

``MemoryBackend`` (one process) keeps counts and snapshots in the process;
``RedisBackend`` in its Redis; ``PostgresBackend`` in tables of its database
(``postgres_store``, migration ``0002``). Another backend may offer its own with a
method ``operations_store(ttl)`` returning an ``OperationsStore``; without one, the
live view shows this process only and the connection limits refuse to start
(they would count per process, not across processes).
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from ..broadcast import get_backend
from ..broadcast.memory import MemoryBackend
from .stores import MemoryStore, OperationsStore

_stores: dict[int, tuple[object, OperationsStore]] = {}


def _make(backend: object, ttl: float, limits: bool) -> OperationsStore:
    custom = getattr(backend, "operations_store", None)
    if custom is not None:
        store: OperationsStore = custom(ttl)
        return store
    if isinstance(backend, MemoryBackend):
        return MemoryStore(ttl)
    try:
        from ..broadcast.redis import RedisBackend
    except ImportError:  # redis-py is not installed: it cannot be a RedisBackend
        RedisBackend = None  # type: ignore[assignment,misc]  # noqa: N806
    if RedisBackend is not None and isinstance(backend, RedisBackend):
        from .redis_store import RedisStore

        return RedisStore(backend.location, backend.prefix, backend.timeout, ttl)
    postgres = _postgres_store(backend, ttl)
    if postgres is not None:
        return postgres
    if limits:
        raise ImproperlyConfigured(
            "WS_MAX_CONNECTIONS_PER_USER / WS_MAX_CONNECTIONS_PER_IP count sockets "
            f"across processes through the broadcast backend, and "
            f"{type(backend).__qualname__} offers no operations store: use the "
            "MemoryBackend, the RedisBackend or the PostgresBackend, give the backend "
            "an operations_store(ttl) method, or remove the limits."
        )
    return MemoryStore(ttl)


def _postgres_store(backend: object, ttl: float) -> OperationsStore | None:
    try:
        from ..broadcast.postgres import PostgresBackend
    except ImportError:  # psycopg is not installed: it cannot be a PostgresBackend
        return None
    if not isinstance(backend, PostgresBackend):
        return None
    from .postgres_store import PostgresStore

    params = backend.connection_params
    return PostgresStore(params, backend.prefix, backend.timeout, ttl)


def store_for_backend(ttl: float, *, limits: bool) -> OperationsStore:
    """Return the store of the current broadcast backend (one per backend)."""
    backend = get_backend()
    cached = _stores.get(id(backend))
    if cached is not None and cached[0] is backend:
        return cached[1]
    store = _make(backend, ttl, limits)
    _stores.clear()  # the backend changed (settings): forget the old one's store
    _stores[id(backend)] = (backend, store)
    return store
