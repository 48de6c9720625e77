"""The admin live view through Django's test client, with sockets from the test client.

One process, the MemoryBackend: the snapshot is kept in the process, and a close
from the admin reaches the sockets through the control group as it would
through Redis (``tests/browser/test_admin_live_view.py`` runs two processes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from django.test import Client

from django_ws import get_websocket_application
from django_ws.operations import hooks
from django_ws.operations.backend_store import store_for_backend
from django_ws.operations.config import get_operations_settings
from django_ws.testing import WebSocketTestClient, WebSocketTestConnection
from tests.ops_support import ADMIN_SETTINGS, OPS_URLCONF, OPS_WS_URLCONF

LIVE_URL = "/admin/django_ws/live/"


@pytest.fixture
def admin_settings(settings: Any, transactional_db: None) -> Any:
    for name, value in ADMIN_SETTINGS.items():
        setattr(settings, name, value)
    settings.ROOT_URLCONF = OPS_URLCONF
    settings.ROOT_WS_URLCONF = OPS_WS_URLCONF
    settings.WS_MIDDLEWARE = ["django_ws.middleware.AuthMiddleware"]
    settings.WS_BROADCAST = {"BACKEND": "django_ws.broadcast.MemoryBackend"}
    return settings


def session_cookie(user: User) -> dict[str, str]:
    browser = Client()
    browser.force_login(user)
    return {"sessionid": browser.cookies["sessionid"].value}


async def snapshot_with(count: int) -> list[dict[str, Any]]:
    store = store_for_backend(get_operations_settings().ttl, limits=False)
    deadline = time.monotonic() + 10
    while True:
        snapshots = store.read_snapshots()
        if sum(s["open"] for s in snapshots) == count:
            return snapshots
        assert time.monotonic() < deadline, f"no snapshot with {count} sockets: {snapshots}"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def sockets(*cookies: dict[str, str]) -> AsyncIterator[list[WebSocketTestConnection]]:
    app = WebSocketTestClient(get_websocket_application())
    opened: list[WebSocketTestConnection] = []
    managers = [app.connect("/ops/who/", cookies=cookie) for cookie in cookies]
    try:
        for manager in managers:
            opened.append(await manager.__aenter__())
        yield opened
    finally:
        for manager in reversed(managers[: len(opened)]):
            await manager.__aexit__(None, None, None)
        tracker = hooks.tracker
        if tracker is not None:
            tracker.stop()  # type: ignore[attr-defined]
        await asyncio.sleep(0)


async def test_the_live_view_lists_sockets_groups_and_the_process(admin_settings: Any) -> None:
    staff = await sync_to_async(User.objects.create_user)("staff", password="x", is_staff=True)
    alice = await sync_to_async(User.objects.create_user)("alice", password="x")
    cookie = await sync_to_async(session_cookie)(alice)
    async with sockets(cookie, {}) as (mine, anonymous):
        for ws in (mine, anonymous):
            await ws.send_json("who")
        ids = [(await ws.receive_json())["connection"] for ws in (mine, anonymous)]
        await snapshot_with(2)
        browser = Client()
        await sync_to_async(browser.force_login)(staff)
        response = await sync_to_async(browser.get)(LIVE_URL)
    assert response.status_code == 200
    page = response.content.decode()
    for connection in ids:
        assert f'data-connection="{connection}"' in page
    assert f'data-user="{alice.pk}"' in page
    assert "alice (%d)" % alice.pk in page
    assert "<code>/ops/who/</code>" in page
    assert '<tr class="group"><td>ops-who</td><td>2</td><td>1</td></tr>' in page
    assert '<span id="open-total">2</span>' in page
    assert "MemoryBackend" in page


async def test_the_live_view_is_for_staff_only(admin_settings: Any) -> None:
    bob = await sync_to_async(User.objects.create_user)("bob", password="x")
    browser = Client()
    await sync_to_async(browser.force_login)(bob)
    response = await sync_to_async(browser.get)(LIVE_URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


async def test_closing_a_users_sockets_from_the_admin_closes_them(admin_settings: Any) -> None:
    staff = await sync_to_async(User.objects.create_user)("staff", password="x", is_staff=True)
    alice = await sync_to_async(User.objects.create_user)("alice", password="x")
    cookie = await sync_to_async(session_cookie)(alice)
    async with sockets(cookie, cookie, {}) as (first, second, anonymous):
        await snapshot_with(3)
        browser = Client()
        await sync_to_async(browser.force_login)(staff)
        response = await sync_to_async(browser.post)(
            LIVE_URL + "close/", {"user": str(alice.pk)}
        )
        assert response.status_code == 302
        assert await first.receive_close() == 1008
        assert await second.receive_close() == 1008
        assert first.close_reason == "Closed by an administrator"
        await anonymous.send_json("still here")
        assert (await anonymous.receive_json())["user"] is None


async def test_closing_one_socket_from_the_admin_closes_only_it(admin_settings: Any) -> None:
    staff = await sync_to_async(User.objects.create_user)("staff", password="x", is_staff=True)
    async with sockets({}, {}) as (target, other):
        await target.send_json("who")
        connection = (await target.receive_json())["connection"]
        await snapshot_with(2)
        browser = Client()
        await sync_to_async(browser.force_login)(staff)
        await sync_to_async(browser.post)(LIVE_URL + "close/", {"connection": connection})
        assert await target.receive_close() == 1008
        await other.send_json("who")
        assert (await other.receive_json())["connection"] != connection


def test_the_admin_index_lists_the_live_view_for_staff(admin_settings: Any, rf: Any) -> None:
    from django.contrib import admin

    import django_ws.admin  # noqa: F401  (admin.autodiscover imports it)

    request = rf.get("/admin/")
    request.user = User.objects.create_user("staff", password="x", is_staff=True)
    entries = [app for app in admin.site.get_app_list(request) if app["app_label"] == "django_ws"]
    assert [model["admin_url"] for model in entries[0]["models"]] == [LIVE_URL]
    assert entries[0]["models"][0]["name"] == "Live sockets"


def test_the_live_view_is_on_when_the_admin_is_installed(admin_settings: Any) -> None:
    assert get_operations_settings().live_view is True


def test_the_live_view_is_off_without_the_admin() -> None:
    assert get_operations_settings().live_view is False
