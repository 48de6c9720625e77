"""Route labels: the URL pattern a handler class serves, never the requested path.

Metrics and the live view label connections by route; a path (``/ws/chat/42/``)
would give a label value per room, a pattern (``ws/chat/<int:room>/``) one per route.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.urls import URLPattern, URLResolver

from ..conf import clears_on_settings_change


def _patterns(entries: Iterable[Any], prefix: str) -> Iterable[tuple[str, Any]]:
    for entry in entries:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


_labels: dict[type, str] = {}


@clears_on_settings_change
def _forget_labels() -> None:
    _labels.clear()


def route_label(handler_class: type) -> str:
    """Return the route pattern that serves ``handler_class`` (its name if none does).

    Computed once per class from the project's ws urlconf and ``@ws_route``
    registry; a class served by several patterns is labelled by the first.
    """
    label = _labels.get(handler_class)
    if label is None:
        label = _labels[handler_class] = _find_label(handler_class)
    return label


def _find_label(handler_class: type) -> str:
    from ..routing import get_router

    try:
        router = get_router()
    except Exception:  # no ws urlconf: tests that build handlers by hand
        router = None
    if router is not None:
        for pattern, callback in _patterns(router.resolver.url_patterns, ""):
            target = callback
            if not isinstance(target, type):
                target = router.registry.handler_for(callback)
            if target is handler_class:
                return "/" + pattern.lstrip("^").rstrip("$")
    return f"{handler_class.__module__}.{handler_class.__qualname__}"
