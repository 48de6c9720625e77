"""The example project in a real browser, served by ``manage.py runserver``.

Each test is what a visitor does: log in through the form, open a page, watch
what its WebSocket shows. Set ``DJANGO_WS_SCREENSHOT=docs/img/example.png`` to
save the chat page after the exchange (the README's screenshot).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.browser.example_server import ExampleServer
from tests.live_server import PrivateRedis

#: Seconds the page may take to notice a dead server and to come back after it.
RECONNECT_TIMEOUT_MS = 25_000


def test_two_pages_in_one_room_see_each_others_messages(
    example_server: ExampleServer, new_page: Any
) -> None:
    demo, alice = new_page(), new_page()
    log_in(demo, example_server, "demo", "/chat/tea/")
    log_in(alice, example_server, "alice", "/chat/tea/")
    for page in (demo, alice):
        expect(page.locator("#ws-state")).to_have_attribute("data-state", "open")
        expect(page.locator("#presence-count")).to_have_text("2")
        expect(page.locator("#people li")).to_have_text(["alice", "demo"])

    demo.fill("#text", "Hi Alice, tea at five?")
    demo.press("#text", "Enter")
    expect(alice.locator("#messages li.theirs .bubble")).to_have_text(["Hi Alice, tea at five?"])
    expect(demo.locator("#messages li.mine .bubble")).to_have_text(["Hi Alice, tea at five?"])

    alice.type("#text", "Sure")  # typing notices go to the others only
    expect(demo.locator("#typing")).to_have_text("alice is typing…")
    expect(alice.locator("#typing")).to_have_text("")
    alice.fill("#text", "Sure, see you there!")
    alice.press("#text", "Enter")
    expect(demo.locator("#messages li.theirs .bubble")).to_have_text(["Sure, see you there!"])
    expect(demo.locator("#messages li.theirs .meta")).to_contain_text(["alice · "])

    screenshot = os.environ.get("DJANGO_WS_SCREENSHOT")
    if screenshot:
        demo.fill("#text", "")
        demo.screenshot(path=screenshot, clip={"x": 0, "y": 0, "width": 1100, "height": 550})

    alice.close()
    expect(demo.locator("#presence-count")).to_have_text("1")
    expect(demo.locator("#people li")).to_have_text(["demo"])


def test_ticker_updates(example_server: ExampleServer, new_page: Any) -> None:
    page = new_page()
    page.goto(example_server.url("/ticker/?symbol=GLOBEX"))
    expect(page.locator("#ws-state")).to_have_attribute("data-state", "open")
    expect(page.locator("h1")).to_have_text("GLOBEX")
    # The quote on open is update 0; @periodic(1) sends 1, 2, ... every second.
    expect(page.locator("#seq")).to_have_attribute("data-seq", "2", timeout=6_000)
    expect(page.locator("#price")).to_have_text(re.compile(r"^\d+\.\d\d$"))
    expect(page.locator("#change")).to_have_text(re.compile(r"^[+-]\d+\.\d\d$"))


def test_progress_bar_reaches_100(example_server: ExampleServer, new_page: Any) -> None:
    page = new_page()
    log_in(page, example_server, "demo", "/jobs/")
    page.click("#start")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    expect(page.locator("#ws-state")).to_have_attribute("data-state", "open")
    expect(page.locator("#progress")).to_have_js_property("value", 100, timeout=15_000)
    expect(page.locator("#percent")).to_have_text("100%")
    expect(page.locator("#status")).to_have_text("done")

    # The background task saved each step through the ORM: the list shows 100%.
    page.goto(example_server.url("/jobs/"))
    expect(page.locator("table.jobs tr").nth(1).locator("td").nth(1)).to_have_text("100%")


def test_anonymous_page_is_refused_the_login_only_socket(
    example_server: ExampleServer, new_page: Any
) -> None:
    page = new_page()
    page.goto(example_server.url("/chat/lobby/"))
    expect(page.locator("#ws-state")).to_have_attribute("data-state", "refused")
    expect(page.locator("#login-hint")).to_be_visible()
    expect(page.locator("#send")).to_be_disabled()
    # The page offers the room's rendered position in ws_since; refused all the same.
    refused = r'"WebSocket /ws/chat/lobby\?ws_since=\S+" 403'
    assert re.search(refused, example_server.log_text())


def test_page_reconnects_by_itself_after_the_server_is_killed_and_restarted(
    new_page: Any,
) -> None:
    with ExampleServer() as server:
        server.prepare().start()
        page = new_page()
        log_in(page, server, "demo", "/chat/lobby/")
        state = page.locator("#ws-state")
        expect(state).to_have_attribute("data-state", "open")

        server.kill()
        expect(state).to_have_attribute("data-state", "reconnecting")
        expect(page.locator("#send")).to_be_disabled()
        server.start()  # same port, same database: the session cookie still works

        expect(state).to_have_attribute("data-state", "open", timeout=RECONNECT_TIMEOUT_MS)
        page.fill("#text", "back again")
        page.press("#text", "Enter")
        expect(page.locator("#messages li.mine .bubble")).to_have_text(["back again"])


def test_two_processes_behind_redis_share_a_room(new_page: Any, private_redis: PrivateRedis) -> None:
    redis = {"DJANGO_WS_REDIS_URL": private_redis.url}
    with ExampleServer(env=redis) as first:
        first.prepare().start()
        with ExampleServer(env=redis, database=first.database) as second:
            second.start()
            demo, alice = new_page(), new_page()
            log_in(demo, first, "demo", "/chat/redis/")
            log_in(alice, second, "alice", "/chat/redis/")
            for page in (demo, alice):
                expect(page.locator("#ws-state")).to_have_attribute("data-state", "open")
                expect(page.locator("#presence-count")).to_have_text("2")
                expect(page.locator("#people li")).to_have_text(["alice", "demo"])

            demo.fill("#text", f"from port {first.port}")
            demo.press("#text", "Enter")
            expect(alice.locator("#messages li.theirs .bubble")).to_have_text(
                [f"from port {first.port}"]
            )
            alice.fill("#text", f"from port {second.port}")
            alice.press("#text", "Enter")
            expect(demo.locator("#messages li.theirs .bubble")).to_have_text(
                [f"from port {second.port}"]
            )


@pytest.fixture
def example_postgres_db() -> Iterator[str]:
    """A database of the test's own on the shared PostgreSQL (127.0.0.1:5432), dropped after."""
    import psycopg

    name = f"django_ws_example_{uuid.uuid4().hex[:12]}"
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=5"
    try:
        connection = psycopg.connect(admin, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL does not answer on 127.0.0.1:5432 ({error}); "
            "`bash scripts/test.sh` starts it (scripts/ensure_postgres.sh)."
        )
    with connection:
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield name
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_processes_on_postgresql_only_share_a_room(
    new_page: Any, example_postgres_db: str
) -> None:
    """The example with no Redis at all: PostgreSQL holds the tables and carries the chat."""
    postgres = {"DJANGO_WS_POSTGRES_DB": example_postgres_db}
    with ExampleServer(env=postgres) as first:
        first.prepare().start()
        with ExampleServer(env=postgres) as second:
            second.start()
            demo, alice = new_page(), new_page()
            log_in(demo, first, "demo", "/chat/pg/")
            log_in(alice, second, "alice", "/chat/pg/")
            for page in (demo, alice):
                expect(page.locator("#ws-state")).to_have_attribute("data-state", "open")
                expect(page.locator("#presence-count")).to_have_text("2")

            demo.fill("#text", f"from port {first.port}")
            demo.press("#text", "Enter")
            expect(alice.locator("#messages li.theirs .bubble")).to_have_text(
                [f"from port {first.port}"]
            )
            alice.fill("#text", f"from port {second.port}")
            alice.press("#text", "Enter")
            expect(demo.locator("#messages li.theirs .bubble")).to_have_text(
                [f"from port {second.port}"]
            )
            # The second page's process goes away and comes back: its page gets what
            # it missed from the history in PostgreSQL, once, without a reload.
            second.kill()
            expect(alice.locator("#ws-state")).to_have_attribute("data-state", "reconnecting")
            demo.fill("#text", "while you were away")
            demo.press("#text", "Enter")
            second.start()
            expect(alice.locator("#ws-state")).to_have_attribute(
                "data-state", "open", timeout=RECONNECT_TIMEOUT_MS
            )
            expect(alice.locator("#messages li.theirs .bubble")).to_have_text(
                [f"from port {first.port}", "while you were away"]
            )
