"""Live HTML: push rendered template fragments to pages on htmx or Turbo.

``{% ws_stream %}`` (``{% load django_ws %}``) connects a page to a stream;
``broadcast_fragment`` and ``@broadcasts_to`` change every page listening to it.
See ``docs/live.md``.
"""

from __future__ import annotations

from .frames import ACTIONS, FLAVORS, Fragment
from .model_broadcasts import broadcasts_to
from .names import dom_id, sign_stream, stream_name, verify_stream
from .publish import (
    broadcast_fragment,
    broadcast_fragment_on_commit,
    broadcast_fragment_sync,
    render_fragment,
)

__all__ = [
    "ACTIONS",
    "FLAVORS",
    "Fragment",
    "broadcast_fragment",
    "broadcast_fragment_on_commit",
    "broadcast_fragment_sync",
    "broadcasts_to",
    "dom_id",
    "render_fragment",
    "sign_stream",
    "stream_name",
    "verify_stream",
]
