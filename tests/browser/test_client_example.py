"""The shipped client on the example's chat page, through a real ``runserver``.

Each test kills its own server with SIGKILL (by PID, as a crash would) and starts
it again on the same port and database. An init script records every state and
recovered event of the page's ``DjangoWebSocket`` and counts the WebSockets the
page creates.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.browser.example_server import ExampleServer
from tests.live_server import PrivateRedis

#: Milliseconds the page may take to notice a dead server and to come back after it.
RECONNECT_TIMEOUT_MS = 25_000

# Wraps the class when client.js defines it: the subclass's constructor listens
# before the first attempt, which the client starts a microtask after `new`.
RECORD_STATES = """
window.states = [];
window.recoveries = [];
window.socketsMade = 0;
const NativeWebSocket = window.WebSocket;
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) { super(...args); window.socketsMade += 1; }
};
let recorded;
Object.defineProperty(window, "DjangoWebSocket", {
  configurable: true,
  get: () => recorded,
  set: (client) => {
    recorded = class extends client {
      constructor(...args) {
        super(...args);
        this.addEventListener("state", (event) => {
          const d = event.detail;
          window.states.push([d.state, d.code ?? null, d.refused]);
        });
        this.addEventListener("recovered", (event) => {
          const d = event.detail;
          window.recoveries.push([d.group, d.recovered, d.missed]);
        });
      }
    };
  },
});
"""


def collapsed(states: list[list[Any]]) -> list[str]:
    """The state names with repeats in a row dropped (each failed attempt repeats one)."""
    names: list[str] = []
    for state, _code, _refused in states:
        if not names or names[-1] != state:
            names.append(state)
    return names


def test_message_sent_while_reconnecting_arrives_after_the_restart(new_page: Any) -> None:
    with ExampleServer() as server:
        server.prepare().start()
        page = new_page()
        page.add_init_script(RECORD_STATES)
        log_in(page, server, "demo", "/chat/lobby/")
        badge = page.locator("#ws-state")
        expect(badge).to_have_attribute("data-state", "open")
        assert page.evaluate("states") == [["connecting", None, False], ["open", None, False]]

        server.kill()
        expect(badge).to_have_attribute("data-state", "reconnecting")
        assert page.evaluate("socket.send({type: 'say', text: 'written while away'})") is True
        server.start()

        expect(badge).to_have_attribute("data-state", "open", timeout=RECONNECT_TIMEOUT_MS)
        expect(page.locator("#messages li.mine .bubble")).to_have_text(["written while away"])
        states = page.evaluate("states")
        assert collapsed(states) == ["connecting", "open", "reconnecting", "open"]
        # The kill drops the TCP connection: no close frame, so 1006 every time.
        assert {(code, refused) for state, code, refused in states[2:-1]} == {(1006, False)}


def test_close_while_reconnecting_ends_the_retries(new_page: Any) -> None:
    with ExampleServer() as server:
        server.prepare().start()
        demo = new_page()
        demo.add_init_script(RECORD_STATES)
        log_in(demo, server, "demo", "/chat/lobby/")
        badge = demo.locator("#ws-state")
        expect(badge).to_have_attribute("data-state", "open")

        server.kill()
        expect(badge).to_have_attribute("data-state", "reconnecting")
        demo.evaluate("socket.close()")
        expect(badge).to_have_attribute("data-state", "closed")
        made = demo.evaluate("socketsMade")
        assert demo.evaluate("states.at(-1)") == ["closed", 1000, False]
        assert demo.evaluate("socket.send({type: 'say', text: 'too late'})") is False

        # Back up, the server sees one person in the lobby: alice, not demo.
        server.start()
        alice = new_page()
        log_in(alice, server, "alice", "/chat/lobby/")
        expect(alice.locator("#ws-state")).to_have_attribute("data-state", "open")
        expect(alice.locator("#presence-count")).to_have_text("1")
        expect(alice.locator("#people li")).to_have_text(["alice"])
        assert demo.evaluate("socketsMade") == made
        states = collapsed(demo.evaluate("states"))
        assert states == ["connecting", "open", "reconnecting", "closed"]


def test_django_serves_the_client_as_an_importable_module(
    example_server: ExampleServer, new_page: Any
) -> None:
    page = new_page()
    page.goto(example_server.url("/ticker/?symbol=GLOBEX"))
    expect(page.locator("#ws-state")).to_have_attribute("data-state", "open")
    imported = page.evaluate(
        """import("/static/django_ws/client.mjs").then((module) => [
            typeof module.default, module.default === module.DjangoWebSocket,
            module.default === globalThis.DjangoWebSocket])"""
    )
    assert imported == ["function", True, True]


def test_page_back_on_its_restarted_process_gets_the_room_from_history(
    new_page: Any, private_redis: PrivateRedis
) -> None:
    redis = {"DJANGO_WS_REDIS_URL": private_redis.url}
    with ExampleServer(env=redis) as first:
        first.prepare().start()
        with ExampleServer(env=redis, database=first.database) as second:
            second.start()
            demo, alice = new_page(), new_page()
            demo.add_init_script(RECORD_STATES)
            log_in(demo, first, "demo", "/chat/history/")
            log_in(alice, second, "alice", "/chat/history/")
            for page in (demo, alice):
                state = page.locator("#ws-state")
                expect(state).to_have_attribute("data-state", "open")
                expect(page.locator("#presence-count")).to_have_text("2")
            say(alice, "before")
            demo_theirs = demo.locator("#messages li.theirs .bubble")
            expect(demo_theirs).to_have_text(["before"])
            demo.evaluate("window.sameDocument = true")  # gone if the page reloads

            first.kill()
            badge = demo.locator("#ws-state")
            expect(badge).to_have_attribute("data-state", "reconnecting")
            away = [f"while you were away {n}" for n in range(1, 6)]
            for text in away:
                say(alice, text)
            alice_mine = alice.locator("#messages li.mine .bubble")
            expect(alice_mine).to_have_text(["before", *away])
            first.start()  # same port, same Redis: the room's history is still there

            expect(badge).to_have_attribute(
                "data-state", "open", timeout=RECONNECT_TIMEOUT_MS
            )
            expect(demo_theirs).to_have_text(["before", *away])
            assert demo.evaluate("window.sameDocument") is True
            # The first join recovers from the rendered position, the rejoin the five.
            recoveries = demo.evaluate("recoveries")
            assert recoveries[-1] == ["chat.history", True, len(away)]
            assert {recovered for _group, recovered, _missed in recoveries} == {True}

            say(demo, "back")
            expect(alice.locator("#messages li.theirs .bubble")).to_have_text(["back"])
            expect(demo.locator("#messages li.mine .bubble")).to_have_text(["back"])
            expect(demo_theirs).to_have_text(["before", *away])  # still once each


def test_message_broadcast_between_render_and_connect_is_shown(
    example_server: ExampleServer, new_page: Any
) -> None:
    alice, demo = new_page(), new_page()
    log_in(alice, example_server, "alice", "/chat/render/")
    expect(alice.locator("#ws-state")).to_have_attribute("data-state", "open")
    log_in(demo, example_server, "demo", "/")
    # Hold the client script: the page is rendered, its socket not yet made.
    held: list[Any] = []
    demo.route("**/static/django_ws/client.js", lambda route: held.append(route))
    demo.goto(example_server.url("/chat/render/"), wait_until="commit")
    for _ in range(200):
        if held:
            break
        demo.wait_for_timeout(50)
    assert len(held) == 1

    say(alice, "sent while your page loaded")
    expect(alice.locator("#messages li.mine .bubble")).to_have_text(
        ["sent while your page loaded"]
    )
    held[0].continue_()

    expect(demo.locator("#ws-state")).to_have_attribute("data-state", "open")
    expect(demo.locator("#messages li.theirs .bubble")).to_have_text(
        ["sent while your page loaded"]
    )


def say(page: Any, text: str) -> None:
    """Send a chat message through the page's socket (no typing notice)."""
    sent = page.evaluate("(text) => socket.send({type: 'say', text: text})", text)
    assert sent is True
