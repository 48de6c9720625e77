"""The element ``{% ws_stream %}`` renders: one tag that connects the page.

htmx: ``<div hx-ext="ws" ws-connect="/ws/django-ws/stream/htmx/<token>?...">``
(the ws extension makes a relative path absolute). Turbo:
``<turbo-stream-source src="ws://host/...">``, which needs the scheme and host
(Turbo opens a WebSocket only for a ``ws:``/``wss:`` URL), taken from the request.

Where the stream's group keeps history, the URL offers the group's position at
render time in ``ws_since``: what is broadcast between this render and the
socket's join is replayed, so the page misses nothing.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.html import format_html
from django.utils.safestring import SafeString

from ..broadcast import get_backend, position_sync
from ..exceptions import BroadcastError
from .frames import FLAVORS
from .names import sign_stream, stream_name
from .stream import stream_url

logger = logging.getLogger("django_ws")


def rendered_position(name: str) -> tuple[str, str, int] | None:
    """Return ``(group, epoch, offset)`` to offer, if the group keeps history."""
    if get_backend().history_policy(name) is None:
        return None
    try:
        epoch, offset = position_sync(name)
    except BroadcastError as error:
        # The page still works; it only cannot close the render-to-join gap.
        logger.warning("No position for live stream %r: %s", name, error)
        return None
    return name, epoch, offset


def default_element_id(name: str) -> str:
    """Return a stable element id for the stream called ``name``."""
    return "ws-stream-" + hashlib.blake2s(name.encode(), digest_size=6).hexdigest()


def stream_element(
    parts: tuple[Any, ...], *, client: str, request: Any = None, element_id: str | None = None
) -> SafeString:
    """Return the HTML element that connects a ``client`` page to the stream ``parts`` name."""
    if client not in FLAVORS:
        raise ValueError(
            f"{{% ws_stream %}} client={client!r}: use one of {', '.join(FLAVORS)}."
        )
    name = stream_name(*parts)
    element_id = element_id or default_element_id(name)
    url = stream_url(
        sign_stream(name), client, since=rendered_position(name), element_id=element_id
    )
    if client == "htmx":
        return format_html(
            '<div id="{}" hidden hx-ext="ws" ws-connect="{}"></div>', element_id, url
        )
    if request is None:
        raise ImproperlyConfigured(
            '{% ws_stream ... client="turbo" %} needs the request in the template '
            "context for the page's host: add "
            "'django.template.context_processors.request' to the template "
            "context_processors and render the page with its request "
            "(render(request, ...))."
        )
    scheme = "wss" if request.is_secure() else "ws"
    return format_html(
        '<turbo-stream-source id="{}" src="{}://{}{}"></turbo-stream-source>',
        element_id,
        scheme,
        request.get_host(),
        url,
    )
