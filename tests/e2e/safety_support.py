"""Helpers for the safety end-to-end tests: server settings, events, HTTP, memory."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.live_server import LiveServer

SAFETY_WS_URLCONF = "tests.e2e.apps.safety_app"
SAFETY_URLCONF = "tests.e2e.apps.safety_urls"
FAST_HASHER = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def safety_settings(events_path: Path, **overrides: Any) -> dict[str, Any]:
    """Return the server settings of the safety test app, plus ``overrides``."""
    return {
        "ROOT_WS_URLCONF": SAFETY_WS_URLCONF,
        "ROOT_URLCONF": SAFETY_URLCONF,
        "SAFETY_EVENTS_PATH": str(events_path),
        "PASSWORD_HASHERS": FAST_HASHER,
        **overrides,
    }


def ws_connect(url: str, **options: Any) -> Any:
    """``websockets`` ``connect`` with bounded timeouts and no proxy lookup."""
    options.setdefault("open_timeout", 5)
    options.setdefault("close_timeout", 5)
    return connect(url, proxy=None, **options)


async def echo_round_trip(ws: ClientConnection, value: Any) -> Any:
    """Send ``value`` as JSON and return the decoded reply (bounded wait)."""
    await ws.send(json.dumps(value))
    return json.loads(await asyncio.wait_for(ws.recv(), 5))


class Events:
    """The ``<tag> <event>`` lines the safety app's handlers write."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []

    def of(self, tag: str) -> list[str]:
        """Return the events of connections tagged ``tag``, in order."""
        return [line.split(" ", 1)[1] for line in self.lines() if line.split(" ", 1)[0] == tag]

    async def wait_for(self, tag: str, event: str, timeout: float = 10) -> None:
        """Wait until ``tag`` recorded ``event`` (polling, bounded)."""
        deadline = time.monotonic() + timeout
        while event not in self.of(tag):
            if time.monotonic() > deadline:
                raise AssertionError(f"{tag!r} did not record {event!r}: {self.lines()}")
            await asyncio.sleep(0.02)


def _request(request: urllib.request.Request) -> tuple[int, dict[str, list[str]], bytes]:
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            headers = {name.lower(): response.headers.get_all(name) for name in response.headers}
            return response.status, headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, {}, error.read()


async def http_login(server: LiveServer, username: str, password: str) -> str:
    """Log in through the server's login view; return the ``Cookie`` header value."""
    data = urllib.parse.urlencode({"username": username, "password": password}).encode()
    request = urllib.request.Request(server.http_url("/login/"), data=data)
    status, headers, body = await asyncio.to_thread(_request, request)
    assert (status, body) == (200, b"logged in")
    cookies = [header.split(";", 1)[0] for header in headers.get("set-cookie", [])]
    session = [cookie for cookie in cookies if cookie.startswith("sessionid=")]
    assert len(session) == 1, cookies
    return session[0]


async def http_get_json(server: LiveServer, path: str, cookie: str | None = None) -> tuple[int, Any]:
    """GET ``path`` with ``cookie``; return the status and the decoded JSON body."""
    request = urllib.request.Request(server.http_url(path))
    if cookie is not None:
        request.add_header("Cookie", cookie)
    status, _, body = await asyncio.to_thread(_request, request)
    return status, json.loads(body)


def rss_kib(server: LiveServer) -> int:
    """Return the resident memory of ``server`` and its workers in KiB (``VmRSS``).

    granian and hypercorn serve from worker processes, so the main one alone
    would not grow.
    """
    total = 0
    for pid in server.process_ids():
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total
