"""Ready-made middleware: sessions and auth, login required, connection tickets."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace
from typing import Any

import asgiref.sync
import pytest
from asgiref.sync import sync_to_async
from django.contrib import auth
from django.contrib.auth.backends import BaseBackend
from django.contrib.auth.models import User
from django.core import checks, signing
from django.test import Client

import django_ws.middleware
from django_ws import WebSocketHandler, ws_route
from django_ws.decorators.registry import RouteRegistry
from django_ws.middleware import (
    AuthAsyncMiddleware,
    AuthMiddleware,
    LoginRequiredMiddleware,
    TicketMiddleware,
)
from django_ws.testing import WebSocketTestClient
from django_ws.tickets import issue_ticket
from tests.core_support import app_for, client

transactional_db = pytest.mark.django_db(transaction=True)


def who_am_i(*middleware: Any, events: list[str] | None = None) -> type[WebSocketHandler]:
    """A handler that sends who the request's user is, behind ``middleware``."""

    class WhoAmI(WebSocketHandler):
        async def on_open(self) -> None:
            if events is not None:
                events.append("open")
            user = self.request.user
            await self.send({"user": user.get_username(), "authenticated": user.is_authenticated})

    WhoAmI.middleware = list(middleware)
    return WhoAmI


async def create_user(username: str = "alice", **fields: Any) -> User:
    return await sync_to_async(User.objects.create_user)(username=username, **fields)


async def logged_in(ws_client: WebSocketTestClient, user: User) -> WebSocketTestClient:
    await ws_client.force_login(user)
    return ws_client


class InMemoryBackend(BaseBackend):
    """An authentication backend whose ``aget_user`` needs no thread and no database."""

    users: dict[int, User] = {}

    def get_user(self, user_id: int) -> User | None:
        return self.users.get(user_id)

    async def aget_user(self, user_id: int) -> User | None:
        return self.users.get(user_id)


IN_MEMORY_BACKEND = f"{__name__}.InMemoryBackend"


def in_memory_user(monkeypatch: pytest.MonkeyPatch, pk: int = 7) -> User:
    """Return an unsaved user that ``InMemoryBackend`` knows."""
    user = User(pk=pk, username="alice")
    user.set_unusable_password()
    monkeypatch.setitem(InMemoryBackend.users, pk, user)
    return user


def signed_session_cookie(user: User, backend: str) -> str:
    """Return a signed-cookie session that ``login(user)`` would have left."""
    from django.contrib.sessions.backends.signed_cookies import SessionStore

    session = SessionStore()
    session.update(
        {
            auth.SESSION_KEY: str(user.pk),
            auth.BACKEND_SESSION_KEY: backend,
            auth.HASH_SESSION_KEY: user.get_session_auth_hash(),
        }
    )
    session.save()
    return session.session_key


def count_thread_hops(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Return a list that grows by one per ``sync_to_async`` call, Django's included."""
    hops: list[int] = []
    call = asgiref.sync.SyncToAsync.__call__

    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(threading.get_ident())
        return await call(self, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.SyncToAsync, "__call__", counted)
    return hops


def issued_seconds_ago(user: User, seconds: float, monkeypatch: pytest.MonkeyPatch) -> str:
    """Return a ticket for ``user`` as if issued ``seconds`` ago."""
    now = time.time()
    with monkeypatch.context() as patch:
        patch.setattr(signing, "time", SimpleNamespace(time=lambda: now - seconds))
        return issue_ticket(user)


def another_user_in(ticket: str) -> str:
    """Return ``ticket`` with its user id swapped, the signature left as it was."""
    _, signed_part = ticket.split(":", 1)
    payload = json.dumps({"u": "2", "n": "x"}, separators=(",", ":")).encode()
    return signing.b64_encode(payload).decode() + ":" + signed_part


# Sessions and auth --------------------------------------------------------------


@transactional_db
async def test_auth_middleware_sets_the_user_from_the_session_cookie() -> None:
    ws_client = await logged_in(client(who_am_i(AuthMiddleware)), await create_user())
    async with ws_client.connect("/ws") as ws:
        assert await ws.receive_json() == {"user": "alice", "authenticated": True}


@transactional_db
async def test_auth_middleware_sets_the_session_of_the_cookie() -> None:
    sessions: list[Any] = []

    class Session(WebSocketHandler):
        middleware = [AuthMiddleware]

        async def on_open(self) -> None:
            sessions.append(self.request.session)

    ws_client = await logged_in(client(Session), await create_user())
    async with ws_client.connect("/ws"):
        pass
    cookie = ws_client.cookies["sessionid"].value
    assert sessions[0].session_key == cookie
    assert await sync_to_async(sessions[0].get)("_auth_user_id") == str(
        (await User.objects.aget(username="alice")).pk
    )


async def test_without_a_session_cookie_the_user_is_anonymous_and_the_database_untouched() -> None:
    # No django_db mark: any query would fail the test.
    async with client(who_am_i(AuthMiddleware)).connect("/ws") as ws:
        assert await ws.receive_json() == {"user": "", "authenticated": False}


async def test_without_a_cookie_header_the_handshake_headers_are_not_even_parsed() -> None:
    # Django builds request.META by walking every header: an anonymous connection
    # that nobody inspects should not pay for that.
    requests: list[Any] = []

    class Untouched(WebSocketHandler):
        middleware = [AuthMiddleware]

        async def on_open(self) -> None:
            requests.append(self.request)

    async with client(Untouched).connect("/ws", headers=[("User-Agent", "pytest")]):
        pass
    request = requests[0]
    assert "META" not in vars(request)
    assert request.user.is_anonymous and request.session.session_key is None
    assert request.META["HTTP_USER_AGENT"] == "pytest"  # built on first use


@transactional_db
async def test_an_anonymous_session_is_made_on_first_read_and_is_a_real_session() -> None:
    from django.contrib.sessions.backends.base import SessionBase

    requests: list[Any] = []

    class Anonymous(WebSocketHandler):
        middleware = [AuthMiddleware]

        async def on_open(self) -> None:
            requests.append(self.request)
            assert "session" not in vars(self.request)  # nothing made yet
            self.request.session["seen"] = True
            await sync_to_async(self.request.session.save)()
            await self.send({"key": self.request.session.session_key})

    async with client(Anonymous).connect("/ws") as ws:
        key = (await ws.receive_json())["key"]
    session = requests[0].session
    assert isinstance(session, SessionBase)  # the store itself, not a proxy
    assert session is requests[0].session  # made once
    assert key and await sync_to_async(type(session)(key).get)("seen") is True


@transactional_db
async def test_what_an_earlier_middleware_set_is_kept() -> None:
    alice = await create_user()

    class SetsUser:
        def __init__(self, next: Any) -> None:
            self.next = next

        async def __call__(self, ws: WebSocketHandler) -> Any:
            ws.request.user = alice
            return await self.next(ws)

    async with client(who_am_i(SetsUser, AuthMiddleware)).connect("/ws") as ws:
        assert await ws.receive_json() == {"user": "alice", "authenticated": True}


@transactional_db
async def test_a_middleware_after_it_can_still_set_the_user() -> None:
    alice = await create_user()

    class SetsUser:
        def __init__(self, next: Any) -> None:
            self.next = next

        async def __call__(self, ws: WebSocketHandler) -> Any:
            assert ws.request.user.is_anonymous
            ws.request.user = alice
            return await self.next(ws)

    async with client(who_am_i(AuthMiddleware, SetsUser)).connect("/ws") as ws:
        assert await ws.receive_json() == {"user": "alice", "authenticated": True}


async def test_login_required_after_auth_refuses_a_socket_without_a_cookie() -> None:
    events: list[str] = []
    handler = who_am_i(AuthMiddleware, LoginRequiredMiddleware, events=events)
    async with client(handler).connect("/ws") as ws:
        assert (ws.accepted, ws.status) == (False, 403)
    assert events == []


@transactional_db
async def test_an_unknown_session_cookie_is_anonymous() -> None:
    ws_client = client(who_am_i(AuthMiddleware))
    async with ws_client.connect("/ws", cookies={"sessionid": "x" * 32}) as ws:
        assert await ws.receive_json() == {"user": "", "authenticated": False}


@transactional_db
async def test_the_user_is_loaded_in_a_worker_thread_not_on_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []
    get_user = django_ws.middleware._get_user

    def recording_get_user(request: Any) -> Any:
        threads.append(threading.get_ident())
        return get_user(request)

    monkeypatch.setattr(django_ws.middleware, "_get_user", recording_get_user)
    ws_client = await logged_in(client(who_am_i(AuthMiddleware)), await create_user())
    async with ws_client.connect("/ws") as ws:
        assert (await ws.receive_json())["authenticated"] is True
    assert len(threads) == 1 and threads[0] != loop_thread


@transactional_db
@pytest.mark.parametrize("engine", ["db", "cached_db", "signed_cookies"])
async def test_with_djangos_own_store_and_backend_the_user_costs_one_thread_hop(
    engine: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Django's async aget_user would make one hop per lookup here (two with
    # database sessions): one worker-thread call of get_user is cheaper.
    settings.SESSION_ENGINE = f"django.contrib.sessions.backends.{engine}"
    settings.AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]
    ws_client = await logged_in(client(who_am_i(AuthMiddleware)), await create_user())
    hops = count_thread_hops(monkeypatch)
    async with ws_client.connect("/ws") as ws:
        assert await ws.receive_json() == {"user": "alice", "authenticated": True}
    assert len(hops) == 1


async def test_a_store_and_backend_that_need_no_thread_are_awaited_on_the_event_loop(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No django_db mark: any query would fail the test, as would the ORM on the loop.
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.AUTHENTICATION_BACKENDS = [IN_MEMORY_BACKEND]
    cookie = signed_session_cookie(in_memory_user(monkeypatch), IN_MEMORY_BACKEND)
    hops = count_thread_hops(monkeypatch)
    ws_client = client(who_am_i(AuthMiddleware))
    async with ws_client.connect("/ws", cookies={"sessionid": cookie}) as ws:
        assert await ws.receive_json() == {"user": "alice", "authenticated": True}
    assert hops == []


async def test_without_a_thread_a_user_the_backend_does_not_know_is_anonymous(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.AUTHENTICATION_BACKENDS = [IN_MEMORY_BACKEND]
    cookie = signed_session_cookie(User(pk=8, username="ghost"), IN_MEMORY_BACKEND)
    hops = count_thread_hops(monkeypatch)
    ws_client = client(who_am_i(AuthMiddleware))
    async with ws_client.connect("/ws", cookies={"sessionid": cookie}) as ws:
        assert await ws.receive_json() == {"user": "", "authenticated": False}
    assert hops == []


async def test_login_required_refuses_a_stale_session_without_a_thread(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
    settings.AUTHENTICATION_BACKENDS = [IN_MEMORY_BACKEND]
    user = in_memory_user(monkeypatch)
    cookie = signed_session_cookie(user, IN_MEMORY_BACKEND)
    user.set_unusable_password()  # a password change ends every session
    events: list[str] = []
    handler = who_am_i(LoginRequiredMiddleware, events=events)
    hops = count_thread_hops(monkeypatch)
    async with client(handler).connect("/ws", cookies={"sessionid": cookie}) as ws:
        assert (ws.accepted, ws.status) == (False, 403)
    assert (events, hops) == ([], [])


@transactional_db
async def test_a_database_connection_that_died_does_not_break_later_handshakes() -> None:
    # The worker thread's connection is closed behind Django's back, as a database
    # restart would. Like Django's request cycle, the middleware drops connections
    # that are past CONN_MAX_AGE (0 here) before its lookup, so the next handshake
    # reconnects instead of failing on the dead one forever.
    ws_client = await logged_in(client(who_am_i(AuthMiddleware)), await create_user())
    async with ws_client.connect("/ws") as ws:
        assert (await ws.receive_json())["authenticated"] is True

    def kill_the_worker_threads_connection() -> None:
        from django.db import connection

        connection.ensure_connection()
        connection.connection.close()  # the socket is gone; Django does not know

    await sync_to_async(kill_the_worker_threads_connection)()
    for _ in range(2):
        async with ws_client.connect("/ws") as ws:
            assert await ws.receive_json() == {"user": "alice", "authenticated": True}


def test_auth_async_middleware_is_the_seed_readmes_name_for_it() -> None:
    assert AuthAsyncMiddleware is AuthMiddleware


@transactional_db
async def test_ws_middleware_applies_it_to_every_route(settings: Any) -> None:
    settings.WS_MIDDLEWARE = ["django_ws.middleware.AuthAsyncMiddleware"]
    ws_client = await logged_in(client(who_am_i()), await create_user())
    async with ws_client.connect("/ws") as ws:
        assert await ws.receive_json() == {"user": "alice", "authenticated": True}


@transactional_db
async def test_a_function_route_takes_it_as_route_middleware() -> None:
    registry = RouteRegistry()

    @ws_route("ws", registry=registry, middleware=["django_ws.middleware.AuthMiddleware"])
    async def whoami(ws: WebSocketHandler, data: Any) -> Any:
        return {"user": ws.request.user.get_username()}

    ws_client = WebSocketTestClient(app_for(*registry.urlpatterns))
    await ws_client.force_login(await create_user())
    async with ws_client.connect("/ws") as ws:
        await ws.send_json("who?")
        assert await ws.receive_json() == {"user": "alice"}


@transactional_db
async def test_a_session_whose_user_was_deactivated_is_anonymous() -> None:
    user = await create_user()
    ws_client = await logged_in(client(who_am_i(AuthMiddleware)), user)
    await User.objects.filter(pk=user.pk).aupdate(is_active=False)
    async with ws_client.connect("/ws") as ws:
        assert await ws.receive_json() == {"user": "", "authenticated": False}


# Login required ----------------------------------------------------------------


async def test_login_required_refuses_anonymous_users_with_403_before_accept() -> None:
    events: list[str] = []
    async with client(who_am_i(LoginRequiredMiddleware, events=events)).connect("/ws") as ws:
        assert (ws.accepted, ws.status) == (False, 403)
    assert events == []


@transactional_db
async def test_login_required_admits_a_logged_in_user() -> None:
    handler = who_am_i(LoginRequiredMiddleware)
    ws_client = await logged_in(client(handler), await create_user())
    async with ws_client.connect("/ws") as ws:
        assert await ws.receive_json() == {"user": "alice", "authenticated": True}


@transactional_db
async def test_login_required_refuses_a_user_logged_out_since() -> None:
    ws_client = await logged_in(client(who_am_i(LoginRequiredMiddleware)), await create_user())
    from django.contrib.sessions.models import Session

    await Session.objects.all().adelete()  # what logout() or session expiry does
    async with ws_client.connect("/ws") as ws:
        assert (ws.accepted, ws.status) == (False, 403)


@transactional_db
async def test_login_required_in_ws_middleware_guards_every_route(settings: Any) -> None:
    settings.WS_MIDDLEWARE = ["django_ws.middleware.LoginRequiredMiddleware"]
    async with client(who_am_i()).connect("/ws") as ws:
        assert ws.status == 403


# Tickets --------------------------------------------------------------------------


def ticket_client(events: list[str] | None = None) -> WebSocketTestClient:
    return client(who_am_i(TicketMiddleware, LoginRequiredMiddleware, events=events))


@transactional_db
async def test_a_valid_ticket_admits_its_user() -> None:
    ticket = issue_ticket(await create_user())
    async with ticket_client().connect("/ws", query_string={"ticket": ticket}) as ws:
        assert await ws.receive_json() == {"user": "alice", "authenticated": True}


@transactional_db
async def test_a_ticket_admits_only_once() -> None:
    ticket = issue_ticket(await create_user())
    events: list[str] = []
    ws_client = ticket_client(events)
    async with ws_client.connect("/ws", query_string={"ticket": ticket}) as ws:
        assert ws.accepted
    async with ws_client.connect("/ws", query_string={"ticket": ticket}) as ws:
        assert (ws.accepted, ws.status) == (False, 403)
    assert events == ["open"]


@transactional_db
async def test_an_expired_ticket_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    ticket = issued_seconds_ago(await create_user(), 31, monkeypatch)
    async with ticket_client().connect("/ws", query_string={"ticket": ticket}) as ws:
        assert (ws.accepted, ws.status) == (False, 403)


@transactional_db
async def test_ws_ticket_max_age_sets_the_lifetime(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.WS_TICKET_MAX_AGE = 300
    ticket = issued_seconds_ago(await create_user(), 200, monkeypatch)
    async with ticket_client().connect("/ws", query_string={"ticket": ticket}) as ws:
        assert ws.accepted


@transactional_db
@pytest.mark.parametrize(
    "tamper",
    [
        lambda ticket: ticket[:-1] + ("A" if ticket[-1] != "A" else "B"),  # signature
        lambda ticket: another_user_in(ticket),  # payload, old signature kept
        lambda ticket: signing.dumps({"u": "1", "n": "x"}),  # signed, other salt
        lambda ticket: "not-a-ticket",
        lambda ticket: "",
    ],
    ids=["signature", "payload", "other-salt", "garbage", "empty"],
)
async def test_a_tampered_ticket_is_refused(tamper: Any) -> None:
    ticket = tamper(issue_ticket(await create_user()))
    async with ticket_client().connect("/ws", query_string={"ticket": ticket}) as ws:
        assert (ws.accepted, ws.status) == (False, 403)


@transactional_db
async def test_a_ticket_of_a_deactivated_or_deleted_user_is_refused() -> None:
    inactive = await create_user("bob")
    gone = await create_user("carol")
    tickets = [issue_ticket(inactive), issue_ticket(gone)]
    await User.objects.filter(pk=inactive.pk).aupdate(is_active=False)
    await User.objects.filter(pk=gone.pk).adelete()
    for ticket in tickets:
        async with ticket_client().connect("/ws", query_string={"ticket": ticket}) as ws:
            assert (ws.accepted, ws.status) == (False, 403)


async def test_a_refused_ticket_is_logged_with_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    async with ticket_client().connect("/ws", query_string={"ticket": "forged"}) as ws:
        assert ws.status == 403
    assert "ticket invalid" in caplog.text


@transactional_db
async def test_without_a_ticket_the_session_cookie_still_counts() -> None:
    ws_client = await logged_in(ticket_client(), await create_user())
    async with ws_client.connect("/ws") as ws:
        assert await ws.receive_json() == {"user": "alice", "authenticated": True}


@transactional_db
async def test_a_ticket_carries_no_session_key_and_no_password() -> None:
    user = await sync_to_async(User.objects.create_user)("alice", password="s3cret-pass")
    ws_client = await logged_in(client(who_am_i()), user)
    ticket = issue_ticket(user)
    assert ws_client.cookies["sessionid"].value not in ticket
    assert json.dumps(signing.loads(ticket, salt="django_ws.tickets")).count("s3cret") == 0


# The ticket view, over Django's test client -----------------------------------------


@pytest.mark.urls("tests.e2e.apps.safety_urls")
@pytest.mark.django_db
def test_the_ticket_view_issues_a_ticket_to_a_logged_in_user() -> None:
    http = Client()
    http.force_login(User.objects.create_user("alice"))
    response = http.get("/ws-ticket/")
    assert response.status_code == 200
    assert response.json() == {"ticket": response.json()["ticket"], "expires_in": 30}
    assert "no-store" in response["Cache-Control"]  # never cached by a proxy or browser


@pytest.mark.urls("tests.e2e.apps.safety_urls")
@pytest.mark.django_db
def test_the_ticket_view_refuses_anonymous_users_with_403() -> None:
    response = Client().get("/ws-ticket/")
    assert (response.status_code, response.json()) == (403, {"error": "login required"})


@pytest.mark.urls("tests.e2e.apps.safety_urls")
@transactional_db
async def test_a_ticket_from_the_view_admits_its_user_on_a_socket() -> None:
    http = Client()
    await sync_to_async(http.force_login)(await create_user())
    response = await sync_to_async(http.get)("/ws-ticket/")
    ticket = response.json()["ticket"]
    async with ticket_client().connect("/ws", query_string={"ticket": ticket}) as ws:
        assert await ws.receive_json() == {"user": "alice", "authenticated": True}


def test_tickets_with_a_dummy_cache_are_reported_as_reusable(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    settings.WS_MIDDLEWARE = ["django_ws.middleware.TicketMiddleware"]
    warnings = [m for m in checks.run_checks(tags=["django_ws"]) if m.id == "django_ws.W010"]
    assert [warning.msg for warning in warnings] == [
        "TicketMiddleware is in use but the default cache is DummyCache, which "
        "remembers nothing: a ticket could be used again and again until it expires."
    ]
