"""django-ws template tags: ``{% load django_ws %}``.

``{% ws_stream "board" board client="htmx" %}`` connects the page to a live
stream; ``{% dom_id card %}`` gives the element id its fragments target.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.db.models import Model
from django.utils.safestring import SafeString

from ..live.element import stream_element
from ..live.names import dom_id as model_dom_id

register = template.Library()


@register.simple_tag(takes_context=True)
def ws_stream(
    context: template.Context, *parts: Any, client: str = "htmx", id: str | None = None
) -> SafeString:
    """Render the element that keeps this page's ``parts`` stream live."""
    return stream_element(
        parts, client=client, request=context.get("request"), element_id=id
    )


@register.simple_tag
def dom_id(obj: Model, prefix: str | None = None) -> str:
    """Render ``obj``'s element id (``card_5``), as ``django_ws.live.dom_id``."""
    return model_dom_id(obj, prefix)
