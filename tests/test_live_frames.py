"""Live HTML markup: each action for each client flavor, escaping, rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import django
import pytest
from django.template import TemplateDoesNotExist
from django.utils.html import format_html

from django_ws.live import ACTIONS, Fragment, render_fragment
from django_ws.live.frames import css_id, frame_for, reload_frame, root_tag

TEMPLATES_DIR = Path(__file__).parent / "live_templates"
CARD = '<li id="card_5">Hi</li>'


@pytest.fixture
def templates(settings: Any) -> None:
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "DIRS": [TEMPLATES_DIR],
        }
    ]


HTMX = {
    "append": '<div hx-swap-oob="beforeend:body:not(:has(#card_5)) #cards">' + CARD + "</div>",
    "prepend": '<div hx-swap-oob="afterbegin:body:not(:has(#card_5)) #cards">' + CARD + "</div>",
    "before": '<div hx-swap-oob="beforebegin:body:not(:has(#card_5)) #cards">' + CARD + "</div>",
    "after": '<div hx-swap-oob="afterend:body:not(:has(#card_5)) #cards">' + CARD + "</div>",
    "update": '<div hx-swap-oob="innerHTML:#cards">' + CARD + "</div>",
    "replace": '<li hx-swap-oob="outerHTML:#cards" id="card_5">Hi</li>',
    "remove": '<div hx-swap-oob="delete:#cards"></div>',
}


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_maps_to_the_htmx_out_of_band_swap_that_does_the_same(action: str) -> None:
    html = "" if action == "remove" else CARD
    assert frame_for("htmx", Fragment(action, "cards", html)) == HTMX[action]


@pytest.mark.parametrize("action", [a for a in ACTIONS if a != "remove"])
def test_each_action_is_a_turbo_stream_with_the_html_in_a_template(action: str) -> None:
    assert frame_for("turbo", Fragment(action, "cards", CARD)) == (
        f'<turbo-stream action="{action}" target="cards"><template>{CARD}</template>'
        "</turbo-stream>"
    )


def test_remove_is_a_turbo_stream_without_template() -> None:
    assert frame_for("turbo", Fragment("remove", "card_5")) == (
        '<turbo-stream action="remove" target="card_5"></turbo-stream>'
    )


def test_an_insert_without_a_root_id_targets_the_element_alone() -> None:
    assert frame_for("htmx", Fragment("append", "log", "<p>hi</p>")) == (
        '<div hx-swap-oob="beforeend:#log"><p>hi</p></div>'
    )


def test_targets_are_escaped_for_css_and_for_the_attribute() -> None:
    assert css_id('a"b,c') == "#a\\22 b\\2c c"
    assert css_id("5th") == "#\\35 th"
    assert frame_for("htmx", Fragment("remove", 'x"y')) == (
        '<div hx-swap-oob="delete:#x\\22 y"></div>'
    )
    assert frame_for("turbo", Fragment("remove", 'x"<y')) == (
        '<turbo-stream action="remove" target="x&quot;&lt;y"></turbo-stream>'
    )


def test_the_root_tag_and_its_id_are_found_after_comments_and_blanks() -> None:
    assert root_tag('\n <!-- c --> <li class="a" id=\'x&amp;y\'>') == ("li", "x&y")
    assert root_tag('<li data-id="no">') == ("li", None)
    assert root_tag("text <b>") is None


def test_reload_frames_make_the_page_load_again() -> None:
    assert reload_frame("turbo", "s") == '<turbo-stream action="refresh"></turbo-stream>'
    assert reload_frame("htmx", "ws-stream-1") == (
        '<div hx-swap-oob="beforeend:#ws-stream-1">'
        '<meta http-equiv="refresh" content="0"></div>'
    )


def test_html_is_escaped_unless_it_is_marked_safe() -> None:
    assert render_fragment("update", target="t", html="<b>&").html == "&lt;b&gt;&amp;"
    safe = format_html("<b>{}</b>", "<i>")
    assert render_fragment("update", target="t", html=safe).html == "<b>&lt;i&gt;</b>"


def test_templates_are_autoescaped(templates: None) -> None:
    fragment = render_fragment(
        "append",
        target="cards",
        template="live/card.html",
        context={"card_id": "card_1", "text": "<script>x</script>"},
    )
    assert fragment.html == '<li id="card_1">&lt;script&gt;x&lt;/script&gt;</li>\n'


def test_a_django_6_partial_renders_alone(templates: None) -> None:
    if django.VERSION < (6, 0):  # no partials: the name is a missing template
        with pytest.raises(TemplateDoesNotExist):
            render_fragment("append", target="cards", template="live/board.html#card")
        return
    fragment = render_fragment(
        "append",
        target="cards",
        template="live/board.html#card",
        context={"card_id": "card_2", "text": "two"},
    )
    assert fragment.html == '<li id="card_2">two</li>'


@pytest.mark.parametrize(
    ("action", "options", "message"),
    [
        ("explode", {"html": "x"}, "Unknown live action 'explode'"),
        ("replace", {"html": "just text"}, "must start with an element"),
        ("append", {"html": "x", "target": ""}, "needs target="),
    ],
)
def test_bad_fragments_raise_value_error_at_the_publisher(
    action: str, options: dict[str, Any], message: str
) -> None:
    options.setdefault("target", "t")
    with pytest.raises(ValueError, match=message):
        render_fragment(action, **options)


def test_template_and_html_together_or_neither_raise_type_error() -> None:
    with pytest.raises(TypeError, match="not both"):
        render_fragment("append", target="t", template="x.html", html="x")
    with pytest.raises(TypeError, match="needs template= or html="):
        render_fragment("append", target="t")
