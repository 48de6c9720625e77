"""The example's live board in a real browser, on htmx and on Turbo.

The pages load htmx, its ws extension and Turbo from ``node_modules/``
(``scripts/ensure_npm_packages.sh``); nothing in the pages is our JavaScript.
The example runs under ``manage.py runserver`` behind a Redis of the module's
own, so that a change made by another process (a ``manage.py shell``) reaches
the pages like one made by the server itself.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import websockets.sync.client
from playwright.sync_api import expect
from websockets.exceptions import InvalidStatus

from tests.browser.conftest import log_in
from tests.browser.example_server import ExampleServer
from tests.live_server import PrivateRedis, redis_server_executable

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
NODE_PACKAGES = ("htmx.org", "htmx-ext-ws", "@hotwired/turbo")
PAGES = {"htmx": "/board/", "turbo": "/board/turbo/"}
FLAVORS = pytest.mark.parametrize("flavor", ["htmx", "turbo"])


@pytest.fixture(scope="module")
def board_server() -> Iterator[ExampleServer]:
    missing = [name for name in NODE_PACKAGES if not (REPO_ROOT / "node_modules" / name).is_dir()]
    if missing:
        pytest.fail(
            f"node_modules/ lacks {', '.join(missing)}: run "
            "`bash scripts/ensure_npm_packages.sh` (scripts/test.sh does; it needs npm)."
        )
    executable = redis_server_executable()
    if executable is None:
        pytest.fail("redis-server is missing: apt-get install redis-server.")
    redis = PrivateRedis(executable).start()
    try:
        with ExampleServer(env={"DJANGO_WS_REDIS_URL": redis.url}) as server:
            server.prepare().start()
            yield server
            print(f"--- runserver log:\n{server.log_text()}")
    finally:
        redis.close()


def cards(page: Any) -> Any:
    return page.locator("#cards li .text")


def add_card(page: Any, text: str) -> None:
    page.fill("form.add-card input[name=text]", text)
    page.click("form.add-card button")
    expect(cards(page).filter(has_text=text)).to_have_count(1)


def open_board(new_page: Any, server: ExampleServer, flavor: str) -> Any:
    """Open the board and wait until its stream socket is connected."""
    page = new_page()
    with page.expect_websocket(lambda ws: "/ws/django-ws/stream/" in ws.url):
        page.goto(server.url(PAGES[flavor]))
    return page


@FLAVORS
def test_a_card_added_edited_and_deleted_on_one_page_changes_the_other(
    board_server: ExampleServer, new_page: Any, flavor: str
) -> None:
    watcher = open_board(new_page, board_server, flavor)
    actor = open_board(new_page, board_server, flavor)
    text = f"Buy <milk> ({flavor})"
    add_card(actor, text)  # a plain form POST, redirected back
    card = watcher.locator("#cards li").filter(has_text=text)
    expect(card).to_have_count(1)
    expect(card.locator(".text")).to_have_text(text)  # escaped, shown as typed

    actor.locator("#cards li").filter(has_text=text).locator("a.edit").click()
    actor.fill("form.edit-card input[name=text]", f"Buy oat milk ({flavor})")
    actor.click("form.edit-card button[name=save]")
    expect(watcher.locator("#cards li").filter(has_text=f"Buy oat milk ({flavor})")).to_have_count(1)
    expect(watcher.locator("#cards li").filter(has_text=text)).to_have_count(0)

    actor.locator("#cards li").filter(has_text="Buy oat milk").first.locator("a.edit").click()
    actor.click("form.edit-card button[name=delete]")
    expect(watcher.locator("#cards li").filter(has_text=f"Buy oat milk ({flavor})")).to_have_count(0)


@FLAVORS
def test_a_rolled_back_change_never_shows_and_a_committed_one_does(
    board_server: ExampleServer, new_page: Any, flavor: str
) -> None:
    page = open_board(new_page, board_server, flavor)
    create_card(board_server, f"ghost {flavor}", roll_back=True)
    create_card(board_server, f"committed {flavor}")
    # Messages arrive in order: once the later one shows, the ghost would have.
    expect(cards(page).filter(has_text=f"committed {flavor}")).to_have_count(1)
    expect(cards(page).filter(has_text=f"ghost {flavor}")).to_have_count(0)


def create_card(server: ExampleServer, text: str, *, roll_back: bool = False) -> None:
    """Create a card in another process (``manage.py shell``), committed or not."""
    code = (
        "from django.db import transaction\n"
        "from board.models import Board, Card\n"
        "board = Board.objects.order_by('pk').first()\n"
        "try:\n"
        "    with transaction.atomic():\n"
        f"        Card.objects.create(board=board, text={text!r})\n"
        f"        if {roll_back!r}:\n"
        "            raise RuntimeError\n"
        "except RuntimeError:\n"
        "    pass\n"
    )
    server.manage("shell", "-c", code)


@FLAVORS
def test_a_page_rendered_just_before_a_change_still_shows_it(
    board_server: ExampleServer, new_page: Any, flavor: str
) -> None:
    text = f"between render and connect ({flavor})"
    page = new_page()
    # The page's client library is held back until the card exists: the page
    # was rendered before the change, and its socket connects after it.
    library = "**/htmx-ext-ws/ws.js" if flavor == "htmx" else "**/turbo/*.js"

    def change_then_load(route: Any) -> None:
        create_card(board_server, text)
        route.continue_()

    page.route(library, change_then_load)
    response = page.goto(board_server.url(PAGES[flavor]))
    assert response is not None and text not in response.text()
    expect(cards(page).filter(has_text=text)).to_have_count(1)


@FLAVORS
def test_a_forged_stream_token_is_refused_with_403(
    board_server: ExampleServer, new_page: Any, flavor: str
) -> None:
    page = new_page()
    page.goto(board_server.url(PAGES[flavor]))
    element = page.locator("[ws-connect], turbo-stream-source")
    url = element.get_attribute("ws-connect") or element.get_attribute("src") or ""
    path = re.sub(r"^wss?://[^/]+", "", url)
    token = path.split("?")[0].rsplit("/", 1)[1]
    value, signature = token.rsplit(":", 1)
    forged_value = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    base = board_server.url("/").replace("http://", "ws://").rstrip("/")
    for forged in (f"{forged_value}:{signature}", f"{value}:{signature[::-1]}"):
        with pytest.raises(InvalidStatus) as refused:
            websockets.sync.client.connect(
                base + path.replace(token, forged), open_timeout=10
            )
        assert refused.value.response.status_code == 403
    with websockets.sync.client.connect(base + path, open_timeout=10):
        pass  # the token as rendered is accepted


@FLAVORS
def test_a_page_whose_gap_the_history_lost_loads_itself_again(
    board_server: ExampleServer, new_page: Any, flavor: str
) -> None:
    text = f"after the history was lost ({flavor})"
    page = new_page()
    loads: list[str] = []
    page.on("load", lambda _: loads.append(page.url))
    library = "**/htmx-ext-ws/ws.js" if flavor == "htmx" else "**/turbo/*.js"

    rendered: list[str] = []

    def change_and_lose_history_then_load(route: Any) -> None:
        if not loads:  # the first load only; the reload goes through
            rendered.append(page.content())  # the page as rendered, before the card
            create_card(board_server, text)
            redis.Redis.from_url(board_server.extra_env["DJANGO_WS_REDIS_URL"]).flushall()
        route.continue_()

    page.route(library, change_and_lose_history_then_load)
    page.goto(board_server.url(PAGES[flavor]))
    assert rendered and text not in rendered[0]
    # The socket offered a position of an epoch Redis no longer has: the server
    # tells the page to reload, and the new page has the card. htmx's <meta>
    # refresh loads the page anew; Turbo's refresh action fetches it and swaps
    # the body (no load event).
    expect(cards(page).filter(has_text=text)).to_have_count(1)
    if flavor == "htmx":
        page.wait_for_load_state("load")  # the reloaded document's own load event
        assert len(loads) >= 2


def test_a_card_added_and_deleted_in_the_admin_changes_the_open_pages(
    board_server: ExampleServer, new_page: Any
) -> None:
    pages = [open_board(new_page, board_server, flavor) for flavor in PAGES]
    admin = new_page()
    log_in(admin, board_server, "demo", "/admin/board/card/add/")
    admin.select_option("#id_board", index=1)
    admin.fill("#id_text", "Made in the admin")
    admin.click("input[name=_save]")
    for page in pages:
        expect(cards(page).filter(has_text="Made in the admin")).to_have_count(1)

    admin.locator("#result_list").get_by_role("link", name="Made in the admin").click()
    admin.wait_for_url(re.compile(r"/change/$"))
    admin.goto(admin.url.replace("/change/", "/delete/"))
    admin.click("#content form [type=submit]")  # "Yes, I'm sure"
    for page in pages:
        expect(cards(page).filter(has_text="Made in the admin")).to_have_count(0)


def test_an_htmx_page_that_reconnects_gets_the_replay_without_duplicates(
    board_server: ExampleServer, new_page: Any
) -> None:
    page = new_page()
    sockets: list[Any] = []
    frames: list[list[str]] = []  # what the server sent on each socket

    def through(ws: Any) -> None:  # a transparent proxy that the test can cut
        server = ws.connect_to_server()
        received: list[str] = []
        frames.append(received)

        def relay(message: str | bytes) -> None:
            received.append(str(message))
            ws.send(message)

        server.on_message(relay)
        sockets.append(ws)

    page.route_web_socket(re.compile("/ws/django-ws/stream/"), through)
    page.goto(board_server.url(PAGES["htmx"]))
    create_card(board_server, "before the cut")
    expect(cards(page).filter(has_text="before the cut")).to_have_count(1)
    edited = "edited before the cut"
    board_server.manage(
        "shell",
        "-c",
        "from board.models import Card\n"
        "card = Card.objects.get(text='before the cut')\n"
        f"card.text = {edited!r}\n"
        "card.save()\n",
    )
    expect(cards(page).filter(has_text=edited)).to_have_count(1)

    # 1012: htmx's ws extension reconnects to the same URL, which offers the
    # position the page was rendered at: the server replays the append and the
    # replace, then the page is live again.
    sockets[0].close(code=1012, reason="service restart")
    create_card(board_server, "after the reconnect")
    expect(cards(page).filter(has_text="after the reconnect")).to_have_count(1)
    assert len(sockets) == 2
    replayed = frames[1]
    assert any("before the cut" in frame and "beforeend" in frame for frame in replayed)
    assert any(edited in frame and "outerHTML" in frame for frame in replayed)
    texts = cards(page).all_text_contents()
    assert texts.count(edited) == 1  # the replayed append was not inserted again
    assert "before the cut" not in texts
