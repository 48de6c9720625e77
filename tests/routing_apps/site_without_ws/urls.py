"""HTTP urls of a test site; its WebSocket routes come from the sibling ws_urls."""

from __future__ import annotations

urlpatterns: list[object] = []
