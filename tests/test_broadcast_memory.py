"""Groups and broadcast with the default in-process ``MemoryBackend``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

import django_ws
from django_ws import get_websocket_application
from django_ws.broadcast import BaseBackend, MemoryBackend, get_backend
from tests.broadcast_support import GroupBehaviour


@pytest.fixture
def backend(settings: Any) -> Iterator[BaseBackend]:
    settings.WS_BROADCAST = {"BACKEND": "django_ws.broadcast.MemoryBackend"}
    backend = get_backend()
    yield backend
    assert backend.member_count() == 0


class TestMemoryBackend(GroupBehaviour):
    """Every group behaviour, in one process."""


def test_memory_backend_is_the_default(settings: Any) -> None:
    del settings.WS_BROADCAST
    assert type(get_backend()) is MemoryBackend


def test_unknown_backend_fails_at_startup(settings: Any) -> None:
    settings.WS_BROADCAST = {"BACKEND": "django_ws.broadcast.KafkaBackend"}
    with pytest.raises(ImproperlyConfigured) as excinfo:
        get_websocket_application()
    assert str(excinfo.value).startswith(
        "WS_BROADCAST['BACKEND'] is 'django_ws.broadcast.KafkaBackend', which cannot "
        "be imported ("
    )


def test_a_backend_must_subclass_base_backend(settings: Any) -> None:
    settings.WS_BROADCAST = {"BACKEND": "django_ws.broadcast.Presence"}
    with pytest.raises(ImproperlyConfigured) as excinfo:
        get_websocket_application()
    assert str(excinfo.value) == (
        "WS_BROADCAST['BACKEND'] is 'django_ws.broadcast.Presence', which is not a "
        "broadcast backend (a subclass of django_ws.broadcast.BaseBackend)."
    )


async def test_broadcast_sync_without_members_anywhere_is_a_no_op(
    backend: BaseBackend,
) -> None:
    django_ws.broadcast_sync("lobby", {"text": "nobody listens"})
    assert backend.groups == {}
