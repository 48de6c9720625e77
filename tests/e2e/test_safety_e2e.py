"""Every row of the safety table, end to end: each selected server, a real client, the wire."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core import signing
from websockets.exceptions import ConnectionClosed, InvalidStatus

from django_ws.tickets import issue_ticket
from tests.conftest import LiveServerFactory
from tests.e2e.safety_raw_client import OP_TEXT, RawWebSocket
from tests.e2e.safety_support import (
    FAST_HASHER,
    Events,
    echo_round_trip,
    http_get_json,
    http_login,
    rss_kib,
    safety_settings,
    ws_connect,
)
from tests.e2e.servers import close_seen, server_drops
from tests.live_server import LiveServer

MiB = 1024 * 1024
FOREIGN = "https://evil.test"


@pytest.fixture
def events(tmp_path: Path) -> Events:
    return Events(tmp_path / "events.log")


@pytest.fixture
def server(
    live_server_factory: LiveServerFactory, events: Events, asgi_server: str
) -> LiveServer:
    return live_server_factory(
        safety_settings(events.path, WS_ALLOWED_ORIGINS=["https://*.trusted.test"]),
        server=asgi_server,
    )


@pytest.fixture
def alice(transactional_db: None, settings: Any) -> User:
    """A user in the database the server reads, with password ``wonderland``."""
    settings.PASSWORD_HASHERS = FAST_HASHER
    return User.objects.create_user("alice", password="wonderland")


async def refused_status(url: str, **options: Any) -> tuple[int, bytes]:
    """Open ``url`` expecting a refused handshake; return its HTTP status and body."""
    with pytest.raises(InvalidStatus) as excinfo:
        async with ws_connect(url, **options):
            pass
    response = excinfo.value.response
    return response.status_code, response.body


async def close_of(ws: Any) -> tuple[int, str]:
    """Wait for the server's close frame; return its code and reason."""
    with pytest.raises(ConnectionClosed) as excinfo:
        await asyncio.wait_for(ws.recv(), 10)
    assert excinfo.value.rcvd is not None, "no close frame received"
    return excinfo.value.rcvd.code, excinfo.value.rcvd.reason


# Origin -------------------------------------------------------------------------


async def test_a_foreign_origin_is_refused_with_403_before_any_code_runs(
    server: LiveServer, events: Events
) -> None:
    url = server.ws_url("/safety/probe?tag=foreign")
    # 403 goes as a close before accept: the server answers 403 with no body, and
    # uvicorn logs no spurious "without completing handshake" error for it.
    assert await refused_status(url, origin=FOREIGN) == (403, b"")
    # A connection after it runs every hook; the refused one ran none, not even middleware.
    async with ws_connect(server.ws_url("/safety/probe?tag=after")) as ws:
        assert await echo_round_trip(ws, "hi") == {"echo": "hi"}
    await events.wait_for("after", "close")
    assert events.of("after") == ["middleware", "open", "message", "close"]
    assert events.of("foreign") == []
    assert f"Origin '{FOREIGN}' not allowed" in server.log_text()
    assert "without completing handshake" not in server.log_text()


async def test_the_sites_own_origin_passes(server: LiveServer) -> None:
    origin = f"http://127.0.0.1:{server.port}"
    async with ws_connect(server.ws_url("/safety/probe"), origin=origin) as ws:
        assert await echo_round_trip(ws, "same host") == {"echo": "same host"}


async def test_a_client_without_origin_passes(server: LiveServer) -> None:
    async with ws_connect(server.ws_url("/safety/probe")) as ws:  # websockets sends none
        assert await echo_round_trip(ws, "no origin") == {"echo": "no origin"}


async def test_a_ws_allowed_origins_wildcard_passes_its_subdomains_only(
    server: LiveServer,
) -> None:
    async with ws_connect(server.ws_url("/safety/probe"), origin="https://app.trusted.test") as ws:
        assert await echo_round_trip(ws, "trusted") == {"echo": "trusted"}
    url = server.ws_url("/safety/probe")
    assert (await refused_status(url, origin="https://trusted.test.evil.test"))[0] == 403
    assert (await refused_status(url, origin="http://app.trusted.test"))[0] == 403


@pytest.mark.parametrize("route", ["/safety/probe-open", "/safety/open-function"])
async def test_a_route_can_switch_the_origin_check_off(server: LiveServer, route: str) -> None:
    async with ws_connect(server.ws_url(route), origin=FOREIGN) as ws:
        assert await echo_round_trip(ws, "open route") == {"echo": "open route"}


# Login required and sessions ----------------------------------------------------


async def test_anonymous_users_are_refused_on_a_login_required_route(
    server: LiveServer, events: Events
) -> None:
    url = server.ws_url("/safety/private?tag=anonymous")
    assert (await refused_status(url))[0] == 403
    assert events.of("anonymous") == []


async def test_a_user_logged_in_over_http_is_admitted_with_the_session_cookie(
    server: LiveServer, alice: User
) -> None:
    cookie = await http_login(server, "alice", "wonderland")
    url = server.ws_url("/safety/private")
    async with ws_connect(url, additional_headers={"Cookie": cookie}) as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"user": "alice"}


async def test_a_forged_session_cookie_is_refused(server: LiveServer, alice: User) -> None:
    url = server.ws_url("/safety/private")
    cookie = "sessionid=" + "x" * 32
    assert (await refused_status(url, additional_headers={"Cookie": cookie}))[0] == 403


# Tickets ----------------------------------------------------------------------


async def test_the_ticket_flow_over_http_and_websocket(server: LiveServer, alice: User) -> None:
    assert await http_get_json(server, "/ws-ticket/") == (403, {"error": "login required"})
    cookie = await http_login(server, "alice", "wonderland")
    status, body = await http_get_json(server, "/ws-ticket/", cookie)
    assert (status, sorted(body)) == (200, ["expires_in", "ticket"])
    assert body["expires_in"] == 30

    url = server.ws_url(f"/safety/ticket?ticket={body['ticket']}")
    async with ws_connect(url) as ws:  # no cookie: the ticket alone admits
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"user": "alice"}
    assert (await refused_status(url))[0] == 403  # single use
    assert "ticket already used" in server.log_text()


async def test_expired_and_tampered_tickets_are_refused(
    server: LiveServer, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    with monkeypatch.context() as patch:  # the server shares SECRET_KEY with the tests
        patch.setattr(signing, "time", SimpleNamespace(time=lambda: now - 60))
        expired = issue_ticket(alice)
    valid = issue_ticket(alice)
    tampered = valid[:-1] + ("A" if valid[-1] != "A" else "B")
    for ticket in (expired, tampered):
        url = server.ws_url(f"/safety/ticket?ticket={ticket}")
        assert (await refused_status(url))[0] == 403
    log = server.log_text()
    assert "ticket expired" in log and "ticket invalid" in log


# Limits -----------------------------------------------------------------------


async def test_an_oversized_message_closes_1009(server: LiveServer, events: Events) -> None:
    """daphne's own 1 MiB limit comes first: it drops the connection, no close frame."""
    async with ws_connect(server.ws_url("/safety/probe?tag=big")) as ws:
        await ws.send(b"x" * (MiB + 1))  # the default WS_MAX_MESSAGE_SIZE is 1 MiB
        if server_drops(server.server, MiB + 1):
            with pytest.raises(ConnectionClosed) as excinfo:
                await asyncio.wait_for(ws.recv(), 10)
            assert excinfo.value.rcvd is None
        else:
            assert await close_of(ws) == close_seen(server.server, 1009, "Message too big")
    await events.wait_for("big", "close")
    assert "message" not in events.of("big")


async def test_over_the_message_rate_closes_1008(server: LiveServer) -> None:
    async with ws_connect(server.ws_url("/safety/rate")) as ws:  # 2 messages a second
        for number in range(5):
            await ws.send(json.dumps(number))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"echo": 0}
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"echo": 1}
        assert await close_of(ws) == close_seen(
            server.server, 1008, "Message rate limit exceeded"
        )


async def test_a_client_that_stops_reading_is_cut_off_with_1008_and_memory_stays_flat(
    live_server_factory: LiveServerFactory, events: Events, asgi_server: str
) -> None:
    """A broadcast pushes 100 MiB at a client that reads nothing: 4 MiB at most queue.

    Measured: RSS +0.4 MiB; the same run with ``WS_MAX_SEND_QUEUE = 10**9`` grows
    by 105 MiB and never cuts the client off. On daphne, whose ``send`` never
    waits, django-ws's producer on the Twisted transport supplies the back-pressure
    (``django_ws.backpressure``), so the same bound holds there.
    """
    # A long close timeout keeps the close frame waiting until the client reads again.
    server = live_server_factory(
        safety_settings(events.path, WS_CLOSE_TIMEOUT=30), server=asgi_server
    )
    count, size = 25_600, 4096
    slow = await asyncio.to_thread(
        RawWebSocket.connect, server.port, "/safety/feed?tag=slow", receive_buffer=4096
    )
    try:
        joined = await asyncio.to_thread(slow.recv_frame)
        assert (joined.opcode, joined.payload) == (OP_TEXT, b'{"joined":"feed"}')
        async with ws_connect(server.ws_url("/safety/probe")) as bystander:
            async with ws_connect(server.ws_url("/safety/flood")) as flooder:
                assert await echo_round_trip(bystander, "warm-up") == {"echo": "warm-up"}
                before = rss_kib(server)
                await flooder.send(json.dumps({"count": count, "size": size}))
                for number in range(5):  # served while the flood goes on
                    assert await echo_round_trip(bystander, number) == {"echo": number}
                reply = json.loads(await asyncio.wait_for(flooder.recv(), 60))
                assert reply == {"flooded": count}
                after = rss_kib(server)
                print(f"server RSS {before} KiB before, {after} KiB after {count * size} B")
                await events.wait_for("slow", "close 1008")
                assert await echo_round_trip(bystander, "after") == {"echo": "after"}
        assert after - before < 50 * 1024

        # Reading again, the client finds what was in flight, then the close frame.
        frames, close = await asyncio.to_thread(slow.recv_until_close, 20)
        assert {(frame.opcode, len(frame.payload)) for frame in frames} == {(OP_TEXT, size)}
        assert [int(frame.payload[:8]) for frame in frames] == list(range(len(frames)))
        assert len(frames) < count
        assert (close.close_code, close.close_reason) == close_seen(
            asgi_server, 1008, "Client too slow: send queue full"
        )
    finally:
        slow.close()


# Graceful shutdown ----------------------------------------------------------------


# What a client sees when the server is stopped (SIGTERM), and the on_close events.
# uvicorn closes every socket itself (1012) before the lifespan shutdown. granian
# drops every socket without a close frame (the client sees 1006), then hands the
# app websocket.disconnect 1005 and the lifespan shutdown at once; a close sent
# then never completes (emmett-framework/granian#796). hypercorn 0.18 on Python
# >= 3.12 waits in asyncio's Server.wait_closed() for every connection to end
# before anything else, so nothing reaches the app and the harness's SIGKILL drops
# the sockets (pgjones/hypercorn#308). daphne has no lifespan: twisted stops its
# reactor and drops every socket, and the app hears nothing more, so no on_close
# runs.
SHUTDOWN = {
    "uvicorn": (-signal.SIGTERM, (1012, ""), {"close 1012"}),
    # on_close sees granian's disconnect (1005), or django-ws's own shutdown close
    # (1001) where the lifespan shutdown got to the socket first.
    "granian": (0, None, {"close 1005", "close 1001"}),
    "hypercorn": (-signal.SIGKILL, None, set()),
    "daphne": (0, None, set()),
}


async def test_shutdown_closes_every_socket_as_the_server_allows(
    live_server_factory: LiveServerFactory, events: Events, asgi_server: str
) -> None:
    server = live_server_factory(safety_settings(events.path), server=asgi_server)
    tags = [f"s{number}" for number in range(3)]
    clients = [await ws_connect(server.ws_url(f"/safety/shutdown?tag={tag}")) for tag in tags]
    for ws in clients:
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"open": True}

    exit_code, close, on_close = SHUTDOWN[asgi_server]
    assert await asyncio.to_thread(server.stop, 8) == exit_code
    for ws in clients:
        with pytest.raises(ConnectionClosed) as excinfo:
            await asyncio.wait_for(ws.recv(), 10)
        received = excinfo.value.rcvd
        assert ((received.code, received.reason) if received else None) == close
    for tag in tags:
        if on_close:  # the task is cancelled, and has finished, before on_close runs
            assert events.of(tag)[:2] == ["open", "task-cancelled"]
            assert events.of(tag)[2:] in [[event] for event in on_close]
        else:  # the app never hears of the shutdown
            assert events.of(tag) == ["open"]


@pytest.mark.parametrize("implementation", ["websockets-sansio", "websockets"])
async def test_shutdown_closes_every_socket_runs_each_on_close_once_and_exits(
    live_server_factory: LiveServerFactory, events: Events, implementation: str
) -> None:
    """uvicorn sends 1012 first; django-ws's own 1001 would follow only if it had not."""
    server = live_server_factory(
        safety_settings(events.path),
        uvicorn_args=["--ws", implementation, "--timeout-graceful-shutdown", "5"],
    )
    tags = [f"s{number}" for number in range(5)]
    clients = [await ws_connect(server.ws_url(f"/safety/shutdown?tag={tag}")) for tag in tags]
    for ws in clients:
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"open": True}

    assert await asyncio.to_thread(server.stop, 20) == -signal.SIGTERM
    assert [await close_of(ws) for ws in clients] == [(1012, "")] * 5
    for tag in tags:  # the task is cancelled, and has finished, before on_close runs
        assert events.of(tag) == ["open", "task-cancelled", "close 1012"]
    assert "timeout graceful shutdown exceeded" not in server.log_text()


async def test_shutdown_cancels_a_hook_still_running_at_the_graceful_timeout(
    live_server_factory: LiveServerFactory, events: Events
) -> None:
    server = live_server_factory(
        safety_settings(events.path), uvicorn_args=["--timeout-graceful-shutdown", "1"]
    )
    async with ws_connect(server.ws_url("/safety/shutdown?tag=hung")) as hung:
        async with ws_connect(server.ws_url("/safety/shutdown?tag=idle")) as idle:
            for ws in (hung, idle):
                assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"open": True}
            await hung.send(json.dumps("hang"))
            await events.wait_for("hung", "hanging")

            assert await asyncio.to_thread(server.stop, 20) == -signal.SIGTERM
            assert await close_of(hung) == (1012, "")
            assert await close_of(idle) == (1012, "")
    assert events.of("idle") == ["open", "task-cancelled", "close 1012"]
    # The hung hook never saw the disconnect: uvicorn cancelled it at the timeout. Its
    # close_code is None, or 1001 if django-ws's lifespan shutdown (which follows at
    # once) reached it while its tasks were being cancelled.
    hung_events = events.of("hung")
    assert hung_events[:3] == ["open", "hanging", "task-cancelled"]
    assert hung_events[3:] in (["close None"], ["close 1001"])
    assert "Cancel 1 running task(s), timeout graceful shutdown exceeded" in server.log_text()
