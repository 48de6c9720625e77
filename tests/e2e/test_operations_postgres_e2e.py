"""Operations on ``PostgresBackend`` end to end: limits and the live view, two processes.

Two real uvicorn processes share the PostgreSQL on 127.0.0.1:5432 (a ``PREFIX``
of the test's own), real ``websockets`` clients. The limits are counted in the
operations store's tables by both processes; a refused socket gets HTTP 429
before accept and runs no hook (the app prints ``ops-hook`` lines). The admin
live view, rendered by Django's test client in this process, reads both
processes' snapshots from the same tables. The Redis twins of these tests are in
``test_operations_e2e.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.contrib.auth.models import User
from django.test import Client
from websockets.exceptions import InvalidStatus

from django_ws.broadcast import get_backend
from django_ws.operations.backend_store import store_for_backend
from django_ws.operations.config import get_operations_settings
from tests.conftest import LiveServerFactory
from tests.e2e.safety_support import http_login, ws_connect
from tests.e2e.test_operations_e2e import hooks_run, refused_status, wait_until
from tests.live_server import LiveServer
from tests.ops_support import ADMIN_SETTINGS, OPS_URLCONF, OPS_WS_URLCONF, ops_settings
from tests.postgres_support import postgres_alias, postgres_settings  # noqa: F401

WHO = "/ops/who/"
LIVE_URL = "/admin/django_ws/live/"

TwoServers = tuple[LiveServer, LiveServer]


@pytest.fixture
async def on_postgres(
    settings: Any, postgres_alias: str  # noqa: F811
) -> AsyncIterator[dict[str, Any]]:
    """Point this process at the servers' backend (same alias and ``PREFIX``)."""
    settings.WS_BROADCAST = postgres_settings(postgres_alias, TIMEOUT=2)
    yield settings.WS_BROADCAST
    await get_backend().stop()


@pytest.fixture
def alice(settings: Any, transactional_db: None) -> User:
    settings.PASSWORD_HASHERS = ADMIN_SETTINGS["PASSWORD_HASHERS"]  # the servers' too
    return User.objects.create_user("alice", password="wonderland")


@pytest.fixture
def staff_browser(settings: Any, transactional_db: None) -> Client:
    """A Django test client logged in as staff, with this process set up as the servers."""
    for name, value in ADMIN_SETTINGS.items():
        setattr(settings, name, value)
    settings.ROOT_URLCONF, settings.ROOT_WS_URLCONF = OPS_URLCONF, OPS_WS_URLCONF
    browser = Client()
    browser.force_login(User.objects.create_user("staff", password="x", is_staff=True))
    return browser


async def two_servers(
    factory: LiveServerFactory, backend: dict[str, Any], **overrides: Any
) -> TwoServers:
    server_settings = ops_settings(
        WS_BROADCAST=backend,
        DATABASES=json.loads(json.dumps(django_settings.DATABASES)),
        **overrides,
    )
    one = await asyncio.to_thread(factory, server_settings)
    two = await asyncio.to_thread(factory, server_settings)
    return one, two


async def admitted(url: str, **options: Any) -> bool:
    try:
        async with ws_connect(url, **options):
            return True
    except InvalidStatus:
        return False


async def test_the_per_user_limit_holds_across_two_processes_and_a_refusal_runs_no_hook(
    on_postgres: dict[str, Any], live_server_factory: LiveServerFactory, alice: User
) -> None:
    one, two = await two_servers(
        live_server_factory, on_postgres, WS_LIVE_VIEW=False, WS_MAX_CONNECTIONS_PER_USER=2
    )
    headers = {"Cookie": await http_login(one, "alice", "wonderland")}
    async with ws_connect(one.ws_url(WHO), additional_headers=headers) as first:
        async with ws_connect(two.ws_url(WHO), additional_headers=headers) as second:
            for ws in (first, second):
                await ws.send('"who"')
                assert json.loads(await asyncio.wait_for(ws.recv(), 5))["user"] == alice.pk
            assert await refused_status(one.ws_url(WHO), additional_headers=headers) == 429
            assert await refused_status(two.ws_url(WHO), additional_headers=headers) == 429
            async with ws_connect(two.ws_url(WHO)) as anonymous:  # not alice's
                await anonymous.send('"who"')
                assert json.loads(await asyncio.wait_for(anonymous.recv(), 5))["user"] is None
            assert hooks_run(one, two) == 3
        deadline = time.monotonic() + 10  # one closed: room for one more, anywhere
        while not await admitted(one.ws_url(WHO), additional_headers=headers):
            assert time.monotonic() < deadline, "the closed socket was never given back"
            await asyncio.sleep(0.05)
    assert "Refused" in one.log_text() + two.log_text()


async def test_the_per_address_limit_holds_across_two_processes(
    on_postgres: dict[str, Any], live_server_factory: LiveServerFactory
) -> None:
    one, two = await two_servers(
        live_server_factory, on_postgres, WS_LIVE_VIEW=False, WS_MAX_CONNECTIONS_PER_IP=3
    )
    async with ws_connect(one.ws_url("/ops/echo/1/")), ws_connect(two.ws_url("/ops/echo/2/")):
        async with ws_connect(two.ws_url("/ops/echo/3/")):
            assert await refused_status(one.ws_url("/ops/echo/4/")) == 429
            assert await refused_status(two.ws_url("/ops/echo/5/")) == 429
            assert hooks_run(one, two) == 3
        assert await admitted(one.ws_url("/ops/echo/6/"))


@pytest.mark.newest_env
async def test_the_counts_of_a_process_that_died_expire(
    on_postgres: dict[str, Any], live_server_factory: LiveServerFactory
) -> None:
    one, two = await two_servers(
        live_server_factory,
        on_postgres,
        WS_LIVE_VIEW=False,
        WS_MAX_CONNECTIONS_PER_IP=1,
        WS_OPERATIONS_TTL=1.5,
    )
    async with ws_connect(one.ws_url("/ops/echo/1/")):
        assert await refused_status(two.ws_url("/ops/echo/2/")) == 429
        assert one.pid is not None
        os.kill(one.pid, signal.SIGKILL)  # no close path runs: the count is left behind
        deadline = time.monotonic() + 15
        while not await admitted(two.ws_url("/ops/echo/3/")):
            assert time.monotonic() < deadline, "the dead process's count never expired"
            await asyncio.sleep(0.2)


@pytest.mark.newest_env
async def test_the_live_view_lists_the_sockets_of_both_processes(
    on_postgres: dict[str, Any],
    live_server_factory: LiveServerFactory,
    staff_browser: Client,
) -> None:
    one, two = await two_servers(live_server_factory, on_postgres, WS_LIVE_VIEW=True)
    async with ws_connect(one.ws_url(WHO)) as first, ws_connect(two.ws_url(WHO)) as second:
        answers = []
        for ws in (first, second):
            await ws.send('"who"')
            answers.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
        assert {answer["pid"] for answer in answers} == {one.pid, two.pid}

        def page_with_both() -> str | None:
            try:
                page = staff_browser.get(LIVE_URL).content.decode()
            finally:  # this worker thread's database connections
                connections.close_all()
            listed = all(f'data-connection="{a["connection"]}"' in page for a in answers)
            return page if listed else None

        page = await wait_until(page_with_both, "both processes' sockets in the live view")
    await store_for_backend(get_operations_settings().ttl, limits=False).close()
    assert '<span id="open-total">2</span> sockets open in 2 live processes' in page
    for server in (one, two):
        assert f"<td>{server.pid}</td>" in page
    assert "PostgresBackend" in page
    assert "did not answer" not in page
