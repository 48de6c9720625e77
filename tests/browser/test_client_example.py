"""The shipped client on the example's chat page, through a real ``runserver``.

Each test kills its own server with SIGKILL (by PID, as a crash would) and starts
it again on the same port and database. An init script records every state event
of the page's ``DjangoWebSocket`` and counts the WebSockets the page creates.
"""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.browser.example_server import ExampleServer

#: Milliseconds the page may take to notice a dead server and to come back after it.
RECONNECT_TIMEOUT_MS = 25_000

# Wraps the class when client.js defines it: the subclass's constructor listens
# before the first attempt, which the client starts a microtask after `new`.
RECORD_STATES = """
window.states = [];
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
