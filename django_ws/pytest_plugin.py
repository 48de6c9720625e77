"""The ``ws_client`` pytest fixture (registered through the ``pytest11`` entry point)."""

from __future__ import annotations

import pytest

from .testing import WebSocketTestClient


@pytest.fixture
def ws_client() -> WebSocketTestClient:
    """A ``WebSocketTestClient`` for the project's application."""
    return WebSocketTestClient()
