"""A new user's project, built from the seed (1.0.2) README's snippets, under each selected server.

``django-admin startproject`` and ``startapp`` make the project; the README's
``asgi.py`` edit, ``ws_urls.py``, ``MySocket`` and ``AuthAsyncMiddleware`` are
pasted unchanged (two-space indents, prints and all); the user logs in through
the admin over HTTP, served by the same application. Then ``websockets`` talks
to it.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from django_ws.asgi_servers import ServerProcess

# The README's snippets, exactly as published ------------------------------------

README_ASGI_REMOVE = [
    "from django.core.asgi import get_asgi_application",
    "application = get_asgi_application()",
]
README_ASGI_ADD = """
from django_ws import get_websocket_application

application = get_websocket_application()
"""

README_WS_URLS = """from django.urls import path

import myapp.ws

urlpatterns = [
  path('ws', myapp.ws.MySocket),
]
"""

README_MY_SOCKET = """from django_ws import WebSocketHandler

class MySocket(WebSocketHandler):
  async def on_open(self):
    do_something_on_open()

  async def on_message(self, data):
    do_something_on_msg()

    # send json data
    self.send({"reply": "sending data back"})

  async def on_close(self):
    do_something_on_close()
"""

README_SETTINGS = """
WS_MIDDLEWARE = [
    'myproject.middleware.AuthAsyncMiddleware',
]
"""

README_MIDDLEWARE = """from importlib import import_module

from asgiref.sync import sync_to_async

from django.contrib import auth
from django.conf import settings


class AuthAsyncMiddleware:
    def __init__(self, func):
        self.func = func

    async def __call__(self, ws):
        print('Pre Run Loop')

        if not hasattr(ws.request, 'user'):
            engine = import_module(settings.SESSION_ENGINE)
            SessionStore = engine.SessionStore
            session_key = ws.request.COOKIES.get(settings.SESSION_COOKIE_NAME)
            ws.request.session = SessionStore(session_key)
            ws.request.user = await sync_to_async(auth.get_user)(ws.request)

        print('USER:', ws.request.user)

        ret = await self.func(ws)

        print('POST Run Loop')

        return ret
"""

# What the user writes around them: the hooks' helpers, and a socket using the
# README's "More Features" (start_ping, start_task, sleep_loop) as documented.
USER_HELPERS = """def do_something_on_open():
  print('opened')


def do_something_on_msg():
  print('message')


def do_something_on_close():
  print('closed')


"""

USER_WEATHER_SOCKET = """

class WeatherSocket(WebSocketHandler):
  PING_INTERVAL = 0.2

  async def on_open(self):
    self.start_ping()
    self.start_task('send_weather', self.send_weather)

  async def send_weather(self):
    await self.sleep_loop(self._send_weather, 0.1)

  async def _send_weather(self):
    self.send({'weather': 'sunny'})
"""

USER_WS_URLS_EXTRA = "urlpatterns.append(path('weather', myapp.ws.WeatherSocket))\n"

USERNAME, PASSWORD = "alice", "seed-readme-pw-1"


# Building and serving the project ------------------------------------------------


def run(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def build_project(root: Path, env: dict[str, str]) -> None:
    run(["-m", "django", "startproject", "mysite", str(root)], root.parent, env)
    run(["manage.py", "startapp", "myapp"], root, env)

    asgi = root / "mysite" / "asgi.py"
    text = asgi.read_text()
    for line in README_ASGI_REMOVE:
        assert line + "\n" in text, f"startproject's asgi.py has no {line!r}"
        text = text.replace(line + "\n", "")
    asgi.write_text(text + README_ASGI_ADD)

    (root / "mysite" / "ws_urls.py").write_text(README_WS_URLS + USER_WS_URLS_EXTRA)
    (root / "myapp" / "ws.py").write_text(
        USER_HELPERS + README_MY_SOCKET + USER_WEATHER_SOCKET
    )
    (root / "myproject").mkdir()
    (root / "myproject" / "__init__.py").write_text("")
    (root / "myproject" / "middleware.py").write_text(README_MIDDLEWARE)
    settings = root / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + README_SETTINGS)

    run(["manage.py", "migrate", "--noinput"], root, env)
    run(
        [
            "manage.py",
            "createsuperuser",
            "--noinput",
            "--username",
            USERNAME,
            "--email",
            "a@example.com",
        ],
        root,
        {**env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
    )


def admin_login(port: int) -> str:
    """Log in through the admin's login form; return the session cookie's value."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login_url = f"http://127.0.0.1:{port}/admin/login/"
    page = opener.open(login_url, timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None, page
    form = urllib.parse.urlencode(
        {
            "username": USERNAME,
            "password": PASSWORD,
            "csrfmiddlewaretoken": token.group(1),
            "next": "/admin/",
        }
    ).encode()
    response = opener.open(login_url, data=form, timeout=10)
    assert response.geturl() == f"http://127.0.0.1:{port}/admin/", "login failed"
    cookies = {cookie.name: cookie.value for cookie in jar}
    assert cookies.get("sessionid"), cookies
    return cookies["sessionid"]


@dataclass
class SeedServer:
    process: ServerProcess
    session_id: str

    @property
    def server(self) -> str:
        return self.process.server

    def ws_url(self, path: str) -> str:
        return self.process.ws_url(path)

    def log_text(self) -> str:
        return self.process.log_text()


@pytest.fixture(scope="module")
def seed_server(
    tmp_path_factory: pytest.TempPathFactory, asgi_server: str
) -> Iterator[SeedServer]:
    base = tmp_path_factory.mktemp("seed")
    root = base / "project"
    root.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "PYTHONPATH"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    build_project(root, env)

    # The project's own directory, as `cd mysite && <server> mysite.asgi:...`:
    # granian and hypercorn do not add the working directory to sys.path.
    env["PYTHONPATH"] = str(root)
    process = ServerProcess(
        asgi_server,
        "mysite.asgi:application",
        env=env,
        cwd=root,
        log_path=base / f"{asgi_server}.log",
    )
    try:
        process.start()
        yield SeedServer(process, admin_login(process.port))
    finally:
        process.stop()
        print(f"--- seed project log:\n{process.log_text()}")


# The servers' own log lines: uvicorn's "INFO:", hypercorn's and granian's
# "[...]", daphne's timestamps and access log; the rest is what the app printed.
SERVER_LOG_LINE = re.compile(r"(INFO:|WARNING:|\[|\d{4}-\d\d-\d\d |127\.0\.0\.1:)")


async def settled_log_offset(server: SeedServer, timeout: float = 5) -> int:
    """Return the log's length once every earlier connection printed its last line.

    A server may answer the client's close before the app hears of it (daphne
    does), so an earlier test's "POST Run Loop" can come after it returned.
    """
    deadline = time.monotonic() + timeout
    while (log := server.log_text()).count("Pre Run Loop") != log.count("POST Run Loop"):
        if time.monotonic() > deadline:
            raise AssertionError(f"A connection never finished within {timeout} s:\n{log}")
        await asyncio.sleep(0.05)
    return len(log)


async def wait_logged(
    server: SeedServer, offset: int, text: str, timeout: float = 5
) -> str:
    deadline = time.monotonic() + timeout
    while text not in server.log_text()[offset:]:
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{text!r} not logged within {timeout} s:\n{server.log_text()[offset:]}"
            )
        await asyncio.sleep(0.05)
    return server.log_text()[offset:]


# The tests -------------------------------------------------------------------------


async def test_my_socket_replies_to_an_unawaited_send(seed_server: SeedServer) -> None:
    async with connect(seed_server.ws_url("/ws"), open_timeout=5) as ws:
        await ws.send(json.dumps({"hello": "server"}))
        reply = await asyncio.wait_for(ws.recv(), 5)
    assert json.loads(reply) == {"reply": "sending data back"}


async def test_the_readme_middleware_prints_around_the_whole_connection(
    seed_server: SeedServer,
) -> None:
    offset = await settled_log_offset(seed_server)
    async with connect(seed_server.ws_url("/ws"), open_timeout=5) as ws:
        await ws.send(json.dumps("hi"))
        await asyncio.wait_for(ws.recv(), 5)
    log = await wait_logged(seed_server, offset, "POST Run Loop")
    printed = [line for line in log.splitlines() if not SERVER_LOG_LINE.match(line)]
    assert printed == [
        "Pre Run Loop",
        "USER: AnonymousUser",
        "opened",
        "message",
        "closed",
        "POST Run Loop",
    ]


async def test_a_logged_in_session_cookie_gives_the_user(
    seed_server: SeedServer,
) -> None:
    offset = await settled_log_offset(seed_server)
    headers = {"Cookie": f"sessionid={seed_server.session_id}"}
    async with connect(
        seed_server.ws_url("/ws"), open_timeout=5, additional_headers=headers
    ) as ws:
        await ws.send(json.dumps("hi"))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {
            "reply": "sending data back"
        }
    log = await wait_logged(seed_server, offset, "POST Run Loop")
    assert f"USER: {USERNAME}\n" in log
    assert "USER: AnonymousUser" not in log


async def test_start_task_sleep_loop_and_start_ping_work(
    seed_server: SeedServer,
) -> None:
    weather: list[Any] = []
    pings: list[str] = []
    async with connect(seed_server.ws_url("/weather"), open_timeout=5) as ws:
        deadline = time.monotonic() + 5
        while len(weather) < 3 or len(pings) < 2:
            assert time.monotonic() < deadline, (weather, pings)
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if "ping" in message:
                assert list(message) == ["ping"]
                pings.append(message["ping"])
            else:
                weather.append(message)
    assert weather[:3] == [{"weather": "sunny"}] * 3
    for ping in pings:
        assert datetime.fromisoformat(ping).tzinfo is not None  # timezone.now(), USE_TZ
    assert pings == sorted(pings)
