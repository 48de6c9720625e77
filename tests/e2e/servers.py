"""What django-ws promises over the wire on each ASGI server, as the e2e tests check it.

Each server turns the same ASGI events into different bytes; what they do was
measured with ``tests/e2e/probe_servers.py`` (see ``docs/servers.md``). The
tests ask these functions instead of spelling a server's name, so each
difference is stated once, here.
"""

from __future__ import annotations

import os

import pytest

from django_ws.asgi_servers import SERVERS

SERVERS_ENV = "DJANGO_WS_TEST_SERVERS"

# Servers whose scope["extensions"] has "websocket.http.response": a refusal can
# be any HTTP response. daphne puts no "extensions" in the scope at all, so a
# refusal is a close before accept, which it answers with 403.
HTTP_RESPONSE_EXTENSION = {"uvicorn", "hypercorn", "granian"}

# Servers that send the "reason" of websocket.close and the "headers" of
# websocket.accept. daphne (ASGI spec 2.0) drops both; granian 2.8 claims spec
# 2.3 but drops the accept headers.
CLOSE_REASONS = {"uvicorn", "hypercorn", "granian"}
ACCEPT_HEADERS = {"uvicorn", "hypercorn"}

# The largest message each server lets through to the app, where it is below
# django-ws's default WS_MAX_MESSAGE_SIZE (1 MiB) plus one: daphne configures
# autobahn with 1 MiB, and autobahn drops the TCP connection, no close frame.
SERVER_MAX_MESSAGE = {"daphne": 1024 * 1024}


def selected_servers() -> list[str]:
    """Return the servers named in ``DJANGO_WS_TEST_SERVERS`` (default: uvicorn)."""
    names = [
        name.strip()
        for name in os.environ.get(SERVERS_ENV, "uvicorn").split(",")
        if name.strip()
    ]
    unknown = sorted(set(names) - set(SERVERS))
    if unknown or not names:
        raise pytest.UsageError(
            f"{SERVERS_ENV}={os.environ.get(SERVERS_ENV)!r}: name one or more of "
            f"{', '.join(SERVERS)}, separated by commas (unknown: {unknown})."
        )
    return list(dict.fromkeys(names))


def refusal_status(server: str, status: int) -> int:
    """Return the HTTP status a client sees when django-ws refuses with ``status``."""
    return status if server in HTTP_RESPONSE_EXTENSION else 403


def server_drops(server: str, size: int) -> bool:
    """Tell whether ``server`` itself drops the connection on a ``size``-byte message."""
    return size > SERVER_MAX_MESSAGE.get(server, size)


def close_seen(server: str, code: int, reason: str) -> tuple[int, str]:
    """Return the close code and reason a client sees when django-ws closes with them.

    autobahn, under daphne, refuses to send any code but 1000 and 3000-4999 (the
    app's ``send`` raises): django-ws then sends ``4000 + code - 1000`` instead
    (``status.portable_close_code``), so 1008 arrives as 4008.
    """
    if server == "daphne":
        if code != 1000 and not 3000 <= code <= 4999:
            code = 4000 + code - 1000
        reason = ""
    return code, reason
