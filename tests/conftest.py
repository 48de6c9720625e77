"""Fixtures for end-to-end tests: real servers, the shared Redis, a private Redis.

- ``live_server_factory(settings_overrides=None, uvicorn_args=None, server=...)``
  starts a ``LiveServer`` (uvicorn, or ``server``, running ``tests.asgi``) and
  stops it after the test.
- ``asgi_server`` is the name of each server ``DJANGO_WS_TEST_SERVERS`` selects,
  for the tests that run once per server.
  Server processes read the test database file, so a test that gives them rows
  needs ``transactional_db``.
- ``redis_url`` is database 15 of the shared Redis on 127.0.0.1:6379, flushed.
- ``private_redis`` is a redis-server of the test's own, safe to stop and start.
- ``redis_cluster`` is a 3-master, 3-replica Redis Cluster of the session's own;
  ``private_redis_cluster`` one of the test's own, which it may break;
  ``redis_cluster_broadcast`` the ``WS_BROADCAST`` of a RedisBackend on the
  first (``tests/redis_cluster.py``).
- ``chromium_executable`` is the path to Debian's Chromium for browser tests.

A missing Redis or Chromium fails the test with a message saying what to
install: ``bash scripts/test.sh`` sets both up.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.servers import selected_servers
from tests.redis_cluster import (  # noqa: F401 - fixtures
    private_redis_cluster,
    redis_cluster,
    redis_cluster_broadcast,
)
from tests.redis_sentinel import private_redis_sentinel  # noqa: F401 - a fixture
from tests.live_server import (
    LiveServer,
    PrivateRedis,
    port_accepts,
    redis_server_executable,
)

SHARED_REDIS_URL = "redis://127.0.0.1:6379/15"
CHROMIUM = "/usr/bin/chromium"

LiveServerFactory = Callable[..., LiveServer]


@pytest.fixture
def live_server_factory() -> Iterator[LiveServerFactory]:
    servers: list[LiveServer] = []

    def start(
        settings_overrides: dict[str, Any] | None = None,
        uvicorn_args: list[str] | None = None,
        **options: Any,
    ) -> LiveServer:
        server = LiveServer(settings_overrides, uvicorn_args, **options)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        try:
            server.stop()
            # Captured output, which pytest shows only when the test fails.
            print(f"--- log of {server!r}:\n{server.log_text()}")
        finally:
            server.close()


@pytest.fixture(scope="module", params=selected_servers())
def asgi_server(request: pytest.FixtureRequest) -> str:
    """Name each server ``DJANGO_WS_TEST_SERVERS`` selects (default: uvicorn).

    A test that asks for it runs once per server (ids such as ``[granian]``) and
    passes it on: ``live_server_factory(..., server=asgi_server)``. It is for the
    end-to-end tests of what django-ws promises on every server: the core, the
    DSL, groups and broadcast, limits and safety, the seed README, shutdown.
    What a server makes impossible is encoded in ``tests/e2e/servers.py``, not
    skipped. Module scope groups a module's tests by server.

    These stay uvicorn-only, because what they test is uvicorn itself:
    ``tests/test_live_server.py`` (the harness, whose stop codes and
    ``--timeout-graceful-shutdown`` are uvicorn's), the ``uvicorn_args`` tests
    (``--ws`` implementations in test_core_e2e, ``--ws-max-size`` in
    test_fuzz_e2e, the uvicorn shutdown tests with its graceful timeout in
    test_safety_e2e), ``test_runserver_e2e`` (runserver embeds uvicorn), the
    browser tests (they run runserver), and ``test_churn_e2e`` (counts the
    file descriptors of one process; granian's and hypercorn's workers are
    other processes).
    """
    return str(request.param)


@pytest.fixture
def redis_url() -> str:
    import redis

    if not port_accepts(6379):
        pytest.fail(
            "Redis is not reachable on 127.0.0.1:6379. Run the tests with "
            "`bash scripts/test.sh`, which starts it, or start redis-server."
        )
    client = redis.Redis.from_url(SHARED_REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()
    return SHARED_REDIS_URL


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    executable = redis_server_executable()
    if executable is None:
        pytest.fail(
            "redis-server is missing: install it (apt-get install redis-server) "
            "or set DJANGO_WS_TEST_REDIS_SERVER to its path."
        )
    server = PrivateRedis(executable)
    server.start()
    yield server
    server.close()


@pytest.fixture
def chromium_executable() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is missing ({CHROMIUM}): browser tests need Debian's "
            "chromium package (apt-get install chromium chromium-driver), which "
            "`bash scripts/test.sh` installs."
        )
    return CHROMIUM


@pytest.fixture(params=["function", "class"])
def form(request: pytest.FixtureRequest) -> str:
    """The handler form under test: ``@ws_route`` functions or a handler class.

    A test that takes it runs once per form, so both forms are held to the same
    behaviour.
    """
    return str(request.param)
