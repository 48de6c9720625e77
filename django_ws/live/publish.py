"""``broadcast_fragment``: render a fragment once and send it to a stream's pages.

The template is rendered here, once per broadcast, whatever the number of
members and processes; each receiving process then wraps it once per client
flavor it serves (``django_ws.live.stream``). The payload is ordinary JSON, so a
stream group may keep history (``WS_BROADCAST["HISTORY"]``) like any group.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.template.loader import render_to_string
from django.utils.html import conditional_escape

from ..broadcast import broadcast, broadcast_on_commit, broadcast_sync
from .frames import Fragment, check_fragment
from .names import stream_name

#: A stream: its name, or the parts that name it (``("board", board)``).
Stream = Any


def _group(stream: Stream) -> str:
    return stream_name(stream)


def render_fragment(
    action: str,
    *,
    target: str,
    template: str | None = None,
    html: str | None = None,
    context: Mapping[str, Any] | None = None,
    request: Any = None,
) -> Fragment:
    """Return the ``Fragment`` for one change; raise ``ValueError`` for a bad one.

    ``template`` is rendered with ``context`` (a Django 6 partial such as
    ``"board/page.html#card"`` works where Django has them); ``html`` is taken as
    is if it is safe (``format_html``, ``mark_safe``) and escaped otherwise, as a
    template variable would be. ``remove`` takes neither.
    """
    if template is not None and html is not None:
        raise TypeError("Give template= or html=, not both.")
    text: str
    if template is not None:
        text = render_to_string(template, dict(context or {}), request=request)
    elif html is not None:
        text = str(conditional_escape(html))
    elif action == "remove":
        text = ""
    else:
        raise TypeError(f"A live {action!r} needs template= or html=.")
    fragment = Fragment(action, target, text)
    check_fragment(fragment)
    return fragment


async def broadcast_fragment(
    stream: Stream,
    action: str,
    *,
    target: str,
    template: str | None = None,
    html: str | None = None,
    context: Mapping[str, Any] | None = None,
    request: Any = None,
) -> None:
    """Render a fragment once and apply it (``action`` on ``target``) on every page
    listening to ``stream`` (a name or the parts of one, as ``{% ws_stream %}``).

    Actions: append, prepend, replace, update, remove, before, after.
    """
    fragment = render_fragment(
        action, target=target, template=template, html=html, context=context,
        request=request,
    )
    await broadcast(_group(stream), fragment.as_data())


def broadcast_fragment_sync(
    stream: Stream,
    action: str,
    *,
    target: str,
    template: str | None = None,
    html: str | None = None,
    context: Mapping[str, Any] | None = None,
    request: Any = None,
) -> None:
    """``broadcast_fragment`` for sync code: views, signals, management commands."""
    fragment = render_fragment(
        action, target=target, template=template, html=html, context=context,
        request=request,
    )
    broadcast_sync(_group(stream), fragment.as_data())


def broadcast_fragment_on_commit(
    stream: Stream,
    action: str,
    *,
    target: str,
    template: str | None = None,
    html: str | None = None,
    context: Mapping[str, Any] | None = None,
    using: str | None = None,
) -> None:
    """Render now, send once the current transaction commits (never on rollback)."""
    fragment = render_fragment(
        action, target=target, template=template, html=html, context=context
    )
    broadcast_on_commit(_group(stream), fragment.as_data(), using=using)
