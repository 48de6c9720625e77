"""The admin live view in Chromium, over two uvicorn processes sharing a Redis.

A staff user logs in through the admin's own login form, sees the sockets of
both processes on one page, and closes one user's sockets with a click: the
close reaches both processes through the broadcast backend, and the other
sockets stay open.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from django.contrib.auth.models import User
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.browser.conftest import TIMEOUT_MS
from tests.conftest import LiveServerFactory
from tests.live_server import LiveServer, PrivateRedis
from tests.ops_support import ops_settings

LIVE_PATH = "/admin/django_ws/live/"


@pytest.fixture
def database_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    # Playwright's sync API runs an event loop in this thread, which Django takes
    # for async code: the test database's setup and flush are safe all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def users(
    database_beside_playwright: None, transactional_db: None, settings: Any
) -> dict[str, User]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return {
        "staff": User.objects.create_user("staff", password="staffpass", is_staff=True),
        "alice": User.objects.create_user("alice", password="wonderland"),
    }


@pytest.fixture
def servers(
    private_redis: PrivateRedis, live_server_factory: LiveServerFactory
) -> tuple[LiveServer, LiveServer]:
    settings = ops_settings(
        WS_BROADCAST={"BACKEND": "django_ws.broadcast.RedisBackend", "LOCATION": private_redis.url},
        WS_LIVE_VIEW=True,
    )
    return live_server_factory(settings), live_server_factory(settings)


def login_cookie(server: LiveServer, username: str, password: str) -> str:
    import urllib.parse
    import urllib.request

    data = urllib.parse.urlencode({"username": username, "password": password}).encode()
    with urllib.request.urlopen(server.http_url("/login/"), data=data, timeout=5) as response:
        cookies = response.headers.get_all("Set-Cookie")
    return next(c.split(";", 1)[0] for c in cookies if c.startswith("sessionid="))


@pytest.fixture
def open_sockets(
    servers: tuple[LiveServer, LiveServer], users: dict[str, User]
) -> Iterator[dict[str, ClientConnection]]:
    one, two = servers
    cookie = login_cookie(one, "alice", "wonderland")
    headers = {"Cookie": cookie}
    with ExitStack() as stack:
        yield {
            "alice@one": stack.enter_context(
                connect(one.ws_url("/ops/who/"), additional_headers=headers, open_timeout=5)
            ),
            "alice@two": stack.enter_context(
                connect(two.ws_url("/ops/who/"), additional_headers=headers, open_timeout=5)
            ),
            "anonymous@two": stack.enter_context(
                connect(two.ws_url("/ops/who/"), open_timeout=5)
            ),
        }


def who(ws: ClientConnection) -> dict[str, Any]:
    ws.send('"who"')
    answer: dict[str, Any] = json.loads(ws.recv(timeout=5))
    return answer


def test_a_staff_user_sees_both_processes_and_closes_one_users_sockets(
    browser: Any,
    servers: tuple[LiveServer, LiveServer],
    users: dict[str, User],
    open_sockets: dict[str, ClientConnection],
) -> None:
    one, two = servers
    answers = {name: who(ws) for name, ws in open_sockets.items()}
    assert answers["alice@one"]["pid"] != answers["alice@two"]["pid"]
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        page.goto(one.http_url(f"/admin/login/?next={LIVE_PATH}"))
        page.fill("#id_username", "staff")
        page.fill("#id_password", "staffpass")
        page.click("input[type=submit]")
        page.wait_for_url(f"**{LIVE_PATH}")
        deadline = time.monotonic() + 10
        while page.inner_text("#open-total") != "3":  # snapshots follow within a second
            assert time.monotonic() < deadline, page.content()
            page.wait_for_timeout(200)
            page.reload()
        assert page.locator("tr.process").count() == 2
        for answer in answers.values():
            assert page.locator(f'tr.socket[data-connection="{answer["connection"]}"]').count() == 1
        group = page.locator("tr.group", has_text="ops-who").inner_text().split()
        assert group == ["ops-who", "3", "1"]  # three sockets, one user: alice
        alice = users["alice"].pk
        page.locator(f'tr.socket[data-user="{alice}"] form.close-user input[type=submit]').first.click()
        page.wait_for_url(f"**{LIVE_PATH}")
        assert "Asked every process to close every socket of user" in page.content()
    finally:
        page.close()
    for name in ("alice@one", "alice@two"):
        with pytest.raises(ConnectionClosed) as closed:
            open_sockets[name].recv(timeout=10)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "Closed by an administrator")
    assert who(open_sockets["anonymous@two"])["user"] is None
