"""Fragments and the text frames that htmx and Turbo understand.

A ``Fragment`` is what a live broadcast carries: an action, a target element id
and HTML rendered once by the publisher. Each kind of client ("flavor") needs
its own markup around it, made from the fragment by ``frame_for``:

- Turbo's ``<turbo-stream-source>`` reads ``<turbo-stream action target>``
  elements with the HTML in a ``<template>``; its seven actions are ours.
- htmx 2's ws extension swaps every top-level element of a message out of band,
  as ``hx-swap-oob`` says. Each action maps to the swap that does the same:
  append ``beforeend``, prepend ``afterbegin``, before ``beforebegin``, after
  ``afterend``, update ``innerHTML``, remove ``delete`` (on a wrapper ``div``
  whose children are swapped), and replace ``outerHTML`` (set on the fragment's
  own root element, since an outer swap inserts the element that carries it).

Turbo drops an appended element whose id is already in the target; for htmx an
insert whose fragment root has an id targets ``body:not(:has(#id)) #target``,
which matches nothing while that id is on the page. So a message delivered again
(htmx reconnects with the position the page was rendered at, and replays) does
not duplicate an element.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from typing import Any, Literal

from django.utils.html import escape

#: The actions of a live broadcast (Turbo's names).
ACTIONS = ("append", "prepend", "replace", "update", "remove", "before", "after")
#: The clients a stream can serve.
FLAVORS = ("htmx", "turbo")
Flavor = Literal["htmx", "turbo"]

_HTMX_SWAPS = {
    "append": "beforeend",
    "prepend": "afterbegin",
    "before": "beforebegin",
    "after": "afterend",
    "update": "innerHTML",
    "remove": "delete",
    "replace": "outerHTML",
}
_INSERTS = frozenset(("append", "prepend", "before", "after"))

# The first start tag of a fragment, after blanks and comments.
_ROOT_TAG = re.compile(r"\A\s*(?:<!--.*?-->\s*)*<([A-Za-z][A-Za-z0-9-]*)([^>]*)>", re.S)
_ID_ATTRIBUTE = re.compile(r"""(?:^|\s)id\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))""")


@dataclass(frozen=True)
class Fragment:
    """One live change: ``action`` on the element ``target`` with ``html``."""

    action: str
    target: str
    html: str = ""

    def as_data(self) -> dict[str, Any]:
        """Return the JSON payload that a broadcast carries."""
        return {"live": self.action, "target": self.target, "html": self.html}

    @classmethod
    def from_data(cls, data: Any) -> Fragment | None:
        """Return the fragment a broadcast payload carries, or ``None`` if it is not one."""
        if not isinstance(data, dict):
            return None
        action, target, html = data.get("live"), data.get("target"), data.get("html", "")
        if action not in ACTIONS or not isinstance(target, str) or not target:
            return None
        if not isinstance(html, str):
            return None
        return cls(action, target, html)


def root_tag(html: str) -> tuple[str, str | None] | None:
    """Return the fragment's root tag name and its id (or ``None``), if it starts with one."""
    match = _ROOT_TAG.match(html)
    if match is None:
        return None
    found = _ID_ATTRIBUTE.search(match.group(2))
    if found is None:
        return match.group(1), None
    value = next(group for group in found.groups() if group is not None)
    return match.group(1), unescape(value) or None


def check_fragment(fragment: Fragment) -> None:
    """Raise ``ValueError`` for a fragment that some flavor could not apply."""
    if fragment.action not in ACTIONS:
        raise ValueError(
            f"Unknown live action {fragment.action!r}: use one of {', '.join(ACTIONS)}."
        )
    if not isinstance(fragment.target, str) or not fragment.target:
        raise ValueError("A live broadcast needs target=, the id of an element.")
    if fragment.action == "replace" and root_tag(fragment.html) is None:
        raise ValueError(
            "A 'replace' fragment must start with an element (which replaces the "
            f"target), got {fragment.html[:60]!r}."
        )


def css_id(value: str) -> str:
    """Return ``#value`` as a CSS selector, escaping what CSS and htmx would misread."""
    escaped = []
    for index, char in enumerate(value):
        if char.isascii() and (char.isalpha() or char in "_-" or (char.isdigit() and index)):
            escaped.append(char)
        else:
            escaped.append(f"\\{ord(char):x} ")
    return "#" + "".join(escaped)


def htmx_frame(fragment: Fragment) -> str:
    """Return the htmx ws-extension message that applies ``fragment``."""
    swap = _HTMX_SWAPS[fragment.action]
    target = css_id(fragment.target)
    if fragment.action == "replace":
        match = _ROOT_TAG.match(fragment.html)
        if match is None:  # check_fragment refused it at the publisher
            return ""
        end = match.end(1)
        oob = escape(f"{swap}:{target}")
        return f'{fragment.html[:end]} hx-swap-oob="{oob}"{fragment.html[end:]}'
    if fragment.action in _INSERTS:
        root = root_tag(fragment.html)
        if root is not None and root[1]:
            target = f"body:not(:has({css_id(root[1])})) {target}"
    oob = escape(f"{swap}:{target}")
    return f'<div hx-swap-oob="{oob}">{fragment.html}</div>'


def turbo_frame(fragment: Fragment) -> str:
    """Return the ``<turbo-stream>`` element that applies ``fragment``."""
    opening = f'<turbo-stream action="{fragment.action}" target="{escape(fragment.target)}">'
    if fragment.action == "remove":
        return opening + "</turbo-stream>"
    return f"{opening}<template>{fragment.html}</template></turbo-stream>"


def frame_for(flavor: str, fragment: Fragment) -> str:
    """Return ``fragment`` as the text frame that ``flavor``'s client applies."""
    if flavor == "htmx":
        return htmx_frame(fragment)
    return turbo_frame(fragment)


def reload_frame(flavor: str, stream_element_id: str) -> str:
    """Return a frame that makes the page load itself again (its state is stale).

    Sent when the history cannot give what the page missed (``recovered: false``).
    Turbo has the ``refresh`` action; for htmx a ``<meta http-equiv="refresh">`` is
    put inside the stream's own element, which the browser obeys once inserted.
    """
    if flavor == "turbo":
        return '<turbo-stream action="refresh"></turbo-stream>'
    oob = escape(f"beforeend:{css_id(stream_element_id)}")
    return f'<div hx-swap-oob="{oob}"><meta http-equiv="refresh" content="0"></div>'
