"""The Origin check: on by default, Django's CSRF Origin rule, off per project or route."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.urls import path

from django_ws import WebSocketHandler, ws_route
from django_ws.conf import get_settings
from django_ws.decorators.registry import RouteRegistry
from django_ws.testing import WebSocketTestClient, WebSocketTestConnection
from tests.core_support import app_for, client

FOREIGN = "https://evil.example"


def recording_handler(events: list[str], **attributes: Any) -> type[WebSocketHandler]:
    """An echo handler whose middleware and hooks append to ``events``."""

    class Recording:
        def __init__(self, next: Any) -> None:
            self.next = next

        async def __call__(self, ws: WebSocketHandler) -> Any:
            events.append("middleware")
            return await self.next(ws)

    class Echo(WebSocketHandler):
        middleware = [Recording]

        async def on_open(self) -> None:
            events.append("open")

        async def on_message(self, data: Any) -> Any:
            return data

        async def on_close(self) -> None:
            events.append("close")

    for name, value in attributes.items():
        setattr(Echo, name, value)
    return Echo


def function_route(**options: Any) -> WebSocketTestClient:
    """A test client for an ``@ws_route`` echo function registered with ``options``."""
    registry = RouteRegistry()

    @ws_route("ws", registry=registry, **options)
    async def echo(ws: WebSocketHandler, data: Any) -> Any:
        return data

    return WebSocketTestClient(
        app_for(*registry.urlpatterns)  # the compiled class, as the router sees it
    )


async def status_for(
    ws_client: WebSocketTestClient,
    origin: str | None,
    headers: list[tuple[str, str]] | None = None,
    **options: Any,
) -> int:
    """Open ``/ws`` with ``origin``; return 101 if accepted, else the HTTP status."""
    headers = [*(headers or []), *([] if origin is None else [("origin", origin)])]
    async with ws_client.connect("/ws", headers=headers, **options) as ws:
        return 101 if ws.accepted else int(ws.status or 0)


async def open_with_scope(ws_client: WebSocketTestClient, **scope: Any) -> WebSocketTestConnection:
    """Open ``/ws`` with a scope whose keys ``scope`` replaces (host, scheme...)."""
    connection = WebSocketTestConnection(ws_client.app, {**ws_client.scope("/ws"), **scope})
    await connection.open()
    await connection.close()
    return connection


# On by default ----------------------------------------------------------------


async def test_a_client_without_origin_is_admitted() -> None:
    assert await status_for(client(recording_handler([])), None) == 101


async def test_the_sites_own_origin_is_admitted() -> None:
    assert await status_for(client(recording_handler([])), "http://testserver") == 101


async def test_a_foreign_origin_is_refused_with_403_before_any_middleware_or_hook() -> None:
    events: list[str] = []
    assert await status_for(client(recording_handler(events)), FOREIGN) == 403
    assert events == []


async def test_the_refusal_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    await status_for(client(recording_handler([])), FOREIGN)
    assert f"Origin '{FOREIGN}' not allowed" in caplog.text


async def test_without_the_http_response_extension_the_refusal_is_a_close_before_accept() -> None:
    ws_client = client(recording_handler([]))
    async with ws_client.connect(
        "/ws", headers=[("origin", FOREIGN)], http_response_extension=False
    ) as ws:
        assert (ws.accepted, ws.status, ws.close_code) == (False, 403, 1008)


@pytest.mark.parametrize(
    "origin",
    [
        "http://testserver:8000",  # another port is another origin
        "http://sub.testserver",
        "https://testserver",  # the socket is ws://, so the page must be http://
        "null",  # sandboxed iframes and file:// pages
        "http://[::1",  # unparsable: refused, not a server error
    ],
)
async def test_origins_that_are_not_exactly_the_sites_own_are_refused(origin: str) -> None:
    assert await status_for(client(recording_handler([])), origin) == 403


async def test_a_secure_socket_expects_an_https_origin() -> None:
    ws_client = client(recording_handler([]))
    secure = {"scheme": "wss"}
    https_page = [(b"host", b"testserver"), (b"origin", b"https://testserver")]
    http_page = [(b"host", b"testserver"), (b"origin", b"http://testserver")]
    assert (await open_with_scope(ws_client, headers=https_page, **secure)).accepted
    assert (await open_with_scope(ws_client, headers=http_page, **secure)).status == 403


async def test_secure_proxy_ssl_header_makes_the_socket_secure(settings: Any) -> None:
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    ws_client = client(recording_handler([]))
    headers = [("x-forwarded-proto", "https")]
    assert await status_for(ws_client, "https://testserver", headers=headers) == 101


async def test_a_host_outside_allowed_hosts_is_refused_even_if_origin_matches_it() -> None:
    """DNS rebinding: the attacker's page and Host header agree, ALLOWED_HOSTS does not."""
    ws_client = client(recording_handler([]))
    headers = [(b"host", b"evil.example"), (b"origin", b"http://evil.example")]
    assert (await open_with_scope(ws_client, headers=headers)).status == 403


# WS_ALLOWED_ORIGINS -------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://app.example.com", 101),
        ("https://APP.example.com", 101),
        ("http://app.example.com", 403),
        ("https://app.example.com:8443", 403),
        ("https://other.example.com", 403),
    ],
)
async def test_an_exact_allowed_origin(settings: Any, origin: str, status: int) -> None:
    settings.WS_ALLOWED_ORIGINS = ["https://app.example.com"]
    assert await status_for(client(recording_handler([])), origin) == status


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://example.com", 101),
        ("https://app.example.com", 101),
        ("https://a.b.example.com", 101),
        ("http://app.example.com", 403),
        ("https://badexample.com", 403),
        ("https://example.com.evil.test", 403),
    ],
)
async def test_a_wildcard_allows_the_domain_and_its_subdomains(
    settings: Any, origin: str, status: int
) -> None:
    settings.WS_ALLOWED_ORIGINS = ["https://*.example.com"]
    assert await status_for(client(recording_handler([])), origin) == status


async def test_allowed_origins_add_to_the_sites_own(settings: Any) -> None:
    settings.WS_ALLOWED_ORIGINS = ["https://app.example.com"]
    assert await status_for(client(recording_handler([])), "http://testserver") == 101


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            ["example.com"],
            "WS_ALLOWED_ORIGINS entries are origins as browsers send them, "
            "'scheme://host[:port]', or 'scheme://*.domain' for a domain and its "
            "subdomains (the CSRF_TRUSTED_ORIGINS syntax); got 'example.com'.",
        ),
        (
            ["https://example.com/"],
            "WS_ALLOWED_ORIGINS entries are origins as browsers send them, "
            "'scheme://host[:port]', or 'scheme://*.domain' for a domain and its "
            "subdomains (the CSRF_TRUSTED_ORIGINS syntax); got 'https://example.com/'.",
        ),
        (
            ["https://app.*.example.com"],
            "WS_ALLOWED_ORIGINS entries are origins as browsers send them, "
            "'scheme://host[:port]', or 'scheme://*.domain' for a domain and its "
            "subdomains (the CSRF_TRUSTED_ORIGINS syntax); got 'https://app.*.example.com'.",
        ),
        (
            ["https://*"],
            "WS_ALLOWED_ORIGINS contains 'https://*', which would admit every web site. "
            "To turn the Origin check off, set WS_CHECK_ORIGIN = False instead (or "
            "check_origin=False on one route).",
        ),
        (
            "https://example.com",
            "WS_ALLOWED_ORIGINS must be a list of strings, got 'https://example.com'. "
            "Write WS_ALLOWED_ORIGINS = ['https://example.com'] for a single entry.",
        ),
    ],
)
def test_a_malformed_allowed_origin_fails_with_what_to_write(
    settings: Any, value: Any, message: str
) -> None:
    settings.WS_ALLOWED_ORIGINS = value
    with pytest.raises(ImproperlyConfigured) as excinfo:
        get_settings()
    assert str(excinfo.value) == message


# Switching it off -------------------------------------------------------------


async def test_ws_check_origin_false_admits_any_origin(settings: Any) -> None:
    settings.WS_CHECK_ORIGIN = False
    assert await status_for(client(recording_handler([])), FOREIGN) == 101


def test_ws_check_origin_false_is_reported_by_the_system_checks(settings: Any) -> None:
    settings.WS_CHECK_ORIGIN = False
    warnings = [m for m in checks.run_checks(tags=["django_ws"]) if m.id == "django_ws.W001"]
    assert [warning.msg for warning in warnings] == [
        "WS_CHECK_ORIGIN is False: any web site can open WebSockets to this project "
        "with its visitors' cookies."
    ]


async def test_a_handler_class_can_switch_it_off_for_its_route() -> None:
    events: list[str] = []
    ws_client = client(recording_handler(events, check_origin=False))
    assert await status_for(ws_client, FOREIGN) == 101
    assert events == ["middleware", "open", "close"]


async def test_a_function_route_can_switch_it_off() -> None:
    assert await status_for(function_route(check_origin=False), FOREIGN) == 101
    assert await status_for(function_route(), FOREIGN) == 403


async def test_a_route_can_switch_it_on_when_the_project_switched_it_off(settings: Any) -> None:
    settings.WS_CHECK_ORIGIN = False
    ws_client = client(recording_handler([], check_origin=True))
    assert await status_for(ws_client, FOREIGN) == 403


async def test_other_routes_keep_the_check_when_one_switches_it_off() -> None:
    class Open(WebSocketHandler):
        check_origin = False

    class Guarded(WebSocketHandler):
        pass

    ws_client = WebSocketTestClient(app_for(path("open", Open), path("ws", Guarded)))
    async with ws_client.connect("/open", headers=[("origin", FOREIGN)]) as ws:
        assert ws.accepted
    assert await status_for(ws_client, FOREIGN) == 403


# Decided from the headers: the same answer without building the request ----------


def origin_scope(headers: list[tuple[bytes, bytes]], scheme: str = "ws") -> dict[str, Any]:
    return {
        "type": "websocket",
        "path": "/ws",
        "scheme": scheme,
        "headers": headers,
        "server": ("127.0.0.1", 8000),
    }


HEADER_CASES = [
    [(b"host", b"testserver")],  # no Origin
    [(b"host", b"testserver"), (b"origin", b"http://testserver")],
    [(b"host", b"TestServer"), (b"origin", b"HTTP://testserver")],
    [(b"host", b"testserver:8000"), (b"origin", b"http://testserver:8000")],
    [(b"host", b"testserver"), (b"origin", b"http://testserver:8000")],
    [(b"host", b"testserver"), (b"origin", b"https://testserver")],
    [(b"host", b"evil.example"), (b"origin", b"http://evil.example")],  # ALLOWED_HOSTS
    [(b"host", b"bad_host!"), (b"origin", b"http://bad_host!")],  # not a domain
    [(b"host", b"testserver"), (b"origin", b"https://app.example.com")],
    [(b"host", b"testserver"), (b"origin", b"https://a.b.example.com")],
    [(b"host", b"testserver"), (b"origin", b"null")],
    [(b"host", b"testserver"), (b"origin", b"http://[::1")],
    [(b"origin", b"http://testserver")],  # no Host: SERVER_NAME, undecided
    [(b"host", b"testserver"), (b"host", b"x"), (b"origin", b"http://testserver")],
    [(b"host", b"testserver"), (b"origin", b"http://x"), (b"origin", b"http://y")],
]


@pytest.mark.parametrize("headers", HEADER_CASES)
@pytest.mark.parametrize("scheme", ["ws", "wss"])
@pytest.mark.parametrize("allowed", [(), ("https://*.example.com",)])
def test_the_header_check_answers_as_the_request_check_or_not_at_all(
    headers: list[tuple[bytes, bytes]], scheme: str, allowed: tuple[str, ...]
) -> None:
    from django_ws.origin import origin_allowed, origin_allowed_by_headers
    from django_ws.request import WebSocketRequest

    scope = origin_scope(headers, scheme)
    by_headers = origin_allowed_by_headers(scope, allowed)
    by_request = origin_allowed(WebSocketRequest(scope), allowed)
    names = [name for name, _ in headers]
    undecided = b"origin" in names and (names.count(b"host") != 1 or names.count(b"origin") > 1)
    assert by_headers is (None if undecided else by_request)


@pytest.mark.parametrize(
    "setting", [("USE_X_FORWARDED_HOST", True), ("SECURE_PROXY_SSL_HEADER", ("HTTP_X_P", "https"))]
)
def test_proxy_settings_leave_the_answer_to_the_request(settings: Any, setting: Any) -> None:
    from django_ws.origin import origin_allowed_by_headers

    setattr(settings, *setting)
    scope = origin_scope([(b"host", b"testserver"), (b"origin", b"http://testserver")])
    assert origin_allowed_by_headers(scope, ()) is None


async def test_a_forwarded_host_is_still_what_the_origin_must_match(settings: Any) -> None:
    settings.USE_X_FORWARDED_HOST = True
    ws_client = client(recording_handler([]))
    forwarded = [("x-forwarded-host", "localhost")]
    assert await status_for(ws_client, "http://localhost", headers=forwarded) == 101
    assert await status_for(ws_client, "http://testserver", headers=forwarded) == 403


async def test_a_same_origin_handshake_does_not_build_the_request() -> None:
    """Building it walks every header; a handler that never reads it should not pay."""
    built: list[bool] = []

    class Echo(WebSocketHandler):
        async def on_open(self) -> None:
            built.append(self.has_request)

    assert await status_for(client(Echo), "http://testserver") == 101
    assert built == [False]


async def test_a_change_of_allowed_hosts_is_seen_by_the_next_handshake(settings: Any) -> None:
    """The header check remembers which Host values are valid; a settings change resets it."""
    ws_client = client(recording_handler([]))
    headers = [(b"host", b"app.example"), (b"origin", b"http://app.example")]
    assert (await open_with_scope(ws_client, headers=headers)).status == 403
    settings.ALLOWED_HOSTS = ["app.example"]
    assert (await open_with_scope(ws_client, headers=headers)).accepted
    settings.ALLOWED_HOSTS = ["testserver"]
    assert (await open_with_scope(ws_client, headers=headers)).status == 403
