"""The operations settings, the client address, and the in-process limit counts."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_ws import get_websocket_application
from django_ws.broadcast.base import BaseBackend
from django_ws.operations.client_address import client_address
from django_ws.operations.config import get_operations_settings
from django_ws.operations.stores import MemoryStore


class PlainBackend(BaseBackend):
    """A backend of a project's own, without ``operations_store``."""


@pytest.mark.parametrize("value", [0, -1, "10", 2.5, True])
@pytest.mark.parametrize("name", ["WS_MAX_CONNECTIONS_PER_USER", "WS_MAX_CONNECTIONS_PER_IP"])
def test_a_limit_that_is_not_a_positive_whole_number_fails_at_startup(
    settings: Any, name: str, value: Any
) -> None:
    setattr(settings, name, value)
    with pytest.raises(ImproperlyConfigured, match=f"{name} must be a positive whole number"):
        get_websocket_application()


@pytest.mark.parametrize("value", ["X Forwarded For", "", 42])
def test_a_client_ip_header_that_is_not_a_header_name_fails(settings: Any, value: Any) -> None:
    settings.WS_CLIENT_IP_HEADER = value
    with pytest.raises(ImproperlyConfigured, match="WS_CLIENT_IP_HEADER must be the name"):
        get_operations_settings()


def test_limits_on_a_backend_without_an_operations_store_fail_at_startup(settings: Any) -> None:
    settings.WS_BROADCAST = {"BACKEND": "tests.test_operations_config.PlainBackend"}
    settings.WS_MAX_CONNECTIONS_PER_IP = 5
    with pytest.raises(ImproperlyConfigured, match="offers no operations store"):
        get_websocket_application()


def test_the_limits_are_off_by_default() -> None:
    wanted = get_operations_settings()
    assert (wanted.max_connections_per_user, wanted.max_connections_per_ip) == (None, None)


def scope(client: tuple[str, int] | None, *headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"client": client, "headers": list(headers)}


def test_without_a_trusted_header_the_address_is_the_sockets() -> None:
    spoofed = (b"x-forwarded-for", b"1.2.3.4")
    assert client_address(scope(("10.0.0.7", 5555), spoofed), None) == "10.0.0.7"


def test_the_trusted_header_gives_its_last_entry() -> None:
    forwarded = (b"x-forwarded-for", b"203.0.113.9, 198.51.100.1")
    assert client_address(scope(("10.0.0.1", 1), forwarded), "HTTP_X_FORWARDED_FOR") == "198.51.100.1"


def test_of_several_header_lines_the_last_one_counts() -> None:
    lines = ((b"x-real-ip", b"1.1.1.1"), (b"x-real-ip", b"2.2.2.2"))
    assert client_address(scope(None, *lines), "HTTP_X_REAL_IP") == "2.2.2.2"


def test_without_the_header_the_sockets_address_counts() -> None:
    assert client_address(scope(("10.0.0.7", 1)), "HTTP_X_REAL_IP") == "10.0.0.7"


async def test_the_memory_store_refuses_at_the_limit_and_counts_nothing_then() -> None:
    store = MemoryStore(ttl=15)
    user, address = ("user", "1", 2), ("ip", "10.0.0.1", 3)
    assert await store.acquire([user, address]) is None
    assert await store.acquire([user, address]) is None
    assert await store.acquire([user, address]) == user
    assert await store.acquire([("ip", "10.0.0.1", 3)]) is None  # the refusal took nothing
    assert await store.acquire([("ip", "10.0.0.1", 3)]) == address
    await store.release([user, address])
    assert await store.acquire([user]) is None
