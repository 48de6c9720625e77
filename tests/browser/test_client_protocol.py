"""The shipped client (``django_ws/static/django_ws/client.js``) against scripted servers.

A ``websockets`` server on 127.0.0.1 plays each socket's part frame by frame: group
history frames with a duplicate and an epoch change, the ``ws_since`` a reconnecting
client offers, recovery frames, and a close that must end the retries. The page's
timers run on Playwright's clock, so a retry happens when the test says so and
"no retry after a final close" is checked by advancing a minute, not by sleeping.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection

from tests.browser.scripted_server import ScriptedServer

#: Seconds any one wait for the page may take.
WAIT_SECONDS = 10.0
#: The page's clock at the start (seconds since the epoch), for tests that drive it.
START = 1_800_000_000

RECORDER = """
<script>
  window.log = {states: [], messages: [], recovered: []};
  function record(socket) {
    socket.addEventListener("state", (event) => {
      const d = event.detail;
      log.states.push([d.state, d.code ?? null, d.reason ?? null]);
    });
    socket.addEventListener("message", (event) => {
      const d = event.detail;
      const data = d.data instanceof ArrayBuffer ? Array.from(new Uint8Array(d.data)) : d.data;
      log.messages.push([data, d.group ?? null, d.epoch ?? null, d.offset ?? null]);
    });
    socket.addEventListener("recovered", (event) => log.recovered.push(event.detail));
  }
</script>
"""

HISTORY_PAGE = f"""<!doctype html><meta charset="utf-8"><title>history</title>
<script src="/static/client.js"></script>
{RECORDER}
<script>
  window.socket = new DjangoWebSocket("ws://" + location.host + "/ws/history?token=abc", {{
    positions: {{room: ["e1", 41]}},
    binaryType: "arraybuffer",
  }});
  record(socket);
</script>
"""

SCRIPT_PAGE = f"""<!doctype html><meta charset="utf-8"><title>script</title>
<script src="/static/client.js"></script>
{RECORDER}
<script>
  window.result = {{
    type: typeof DjangoWebSocket,
    eventTarget: DjangoWebSocket.prototype instanceof EventTarget,
  }};
  window.socket = new DjangoWebSocket("/ws/echo");
  record(socket);
  socket.send({{ping: "script"}});  // queued until open
</script>
"""

MODULE_PAGE = f"""<!doctype html><meta charset="utf-8"><title>module</title>
{RECORDER}
<script type="module">
  import DjangoWebSocket, {{ DjangoWebSocket as Named }} from "/static/client.mjs";
  window.result = {{
    type: typeof DjangoWebSocket,
    eventTarget: DjangoWebSocket.prototype instanceof EventTarget,
    sameExport: DjangoWebSocket === Named,
    sameGlobal: DjangoWebSocket === globalThis.DjangoWebSocket,
  }};
  window.socket = new DjangoWebSocket("/ws/echo");
  record(socket);
  socket.send({{ping: "module"}});
</script>
"""


#: Open a plain WebSocket to /ws/fence and resolve when the server has closed it.
FENCE = """new Promise((done) => {
  new WebSocket("ws://" + location.host + "/ws/fence").onclose = done;
})"""


def frame(**fields: Any) -> str:
    return json.dumps(fields)


async def history(ws: ServerConnection, number: int) -> None:
    if number == 0:
        await ws.send(frame(group="room", epoch="e1", offset=41, data="rendered"))  # seen
        await ws.send(frame(group="room", epoch="e1", offset=42, data="a"))
        await ws.send(frame(group="room", epoch="e1", offset=42, data="a again"))  # dup
        await ws.send(frame(group="news", epoch="n1", offset=1, data={"x": 1}))
        await ws.send(frame(hello="plain"))
        await ws.send("not json")
        await ws.send(b"\x01\x02\xff")
        await ws.send(frame(group="room", epoch="e2", offset=3, data="b"))  # new epoch
        await ws.send(frame(group="room", epoch="e2", offset=2, data="stale"))  # dup
        await ws.close(1012, "restart")
    else:
        await ws.send(frame(group="room", recovered=True, epoch="e2", offset=3, missed=1))
        await ws.send(frame(group="room", epoch="e2", offset=4, data="c"))
        await ws.send(frame(group="news", recovered=False, epoch="n2", offset=10, missed=5))
        await ws.send(frame(group="news", epoch="n2", offset=10, data="replayed"))  # dup
        await ws.send(frame(group="news", epoch="n2", offset=11, data="fresh"))
        await ws.close(4008, "Policy says no")


async def echo(ws: ServerConnection, number: int) -> None:
    async for message in ws:
        await ws.send(message)


async def fence(ws: ServerConnection, number: int) -> None:
    await ws.close(1000, "fence")


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedServer]:
    pages = {
        "/history.html": HISTORY_PAGE,
        "/script.html": SCRIPT_PAGE,
        "/module.html": MODULE_PAGE,
    }
    scripts = {"/ws/history": history, "/ws/echo": echo, "/ws/fence": fence}
    with ScriptedServer(pages, scripts) as server:
        yield server


def wait_for(page: Any, expression: str) -> Any:
    """Poll ``expression`` in the page until it is truthy (bounded by ``WAIT_SECONDS``)."""
    deadline = time.monotonic() + WAIT_SECONDS
    for _ in range(int(WAIT_SECONDS / 0.02)):
        value = page.evaluate(expression)
        if value or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert value, f"still false after {WAIT_SECONDS} s: {expression}"
    return value


def test_history_frames_positions_recovery_and_a_final_close(
    scripted: ScriptedServer, new_page: Any
) -> None:
    page = new_page()
    page.clock.install(time=START)
    page.clock.pause_at(START + 1)  # the page's time moves only by run_for
    page.goto(scripted.url("/history.html"))

    wait_for(page, "log.states.length === 3")  # connecting, open, reconnecting
    assert page.evaluate("log.states") == [
        ["connecting", None, None],
        ["open", None, None],
        ["reconnecting", 1012, "restart"],
    ]
    assert page.evaluate("log.messages") == [
        ["a", "room", "e1", 42],
        [{"x": 1}, "news", "n1", 1],
        [{"hello": "plain"}, None, None, None],
        ["not json", None, None, None],
        [[1, 2, 255], None, None, None],
        ["b", "room", "e2", 3],
    ]
    assert scripted.ws_since(0, "/ws/history") == '{"room":["e1",41]}'

    page.clock.run_for(20_000)  # the retry's delay is at most baseDelay (500 ms)
    wait_for(page, "log.states.length === 5")
    assert page.evaluate("log.states")[3:] == [
        ["open", None, None],
        ["closed", 4008, "Policy says no"],
    ]
    handshakes = scripted.handshakes_to("/ws/history")
    assert len(handshakes) == 2, handshakes
    assert handshakes[1].startswith("/ws/history?token=abc&ws_since=")
    assert scripted.ws_since(1, "/ws/history") == '{"room":["e2",3],"news":["n1",1]}'
    assert page.evaluate("log.messages")[6:] == [
        ["c", "room", "e2", 4],
        ["fresh", "news", "n2", 11],
    ]
    assert page.evaluate("log.recovered") == [
        {"group": "room", "recovered": True, "epoch": "e2", "offset": 3, "missed": 1},
        {"group": "news", "recovered": False, "epoch": "n2", "offset": 10, "missed": 5},
    ]
    assert page.evaluate("socket.positions") == {"room": ["e2", 4], "news": ["n2", 11]}
    assert page.evaluate("socket.send('too late')") is False

    # 4008 is final: a minute of the page's timers later there is still no attempt.
    # The fence socket is opened after that minute; browsers open one WebSocket to a
    # host at a time, so an attempt made in that minute would reach the server first.
    page.clock.run_for(60_000)
    page.evaluate(FENCE)
    assert [urlpath(seen) for seen in scripted.handshakes[-2:]] == ["/ws/history", "/ws/fence"]
    assert len(scripted.handshakes_to("/ws/history")) == 2
    assert page.evaluate("log.states.length") == 5


def urlpath(seen: str) -> str:
    return seen.split("?", 1)[0]


@pytest.mark.parametrize("kind", ["script", "module"])
def test_script_and_module_both_define_a_working_client(
    scripted: ScriptedServer, new_page: Any, kind: str
) -> None:
    page = new_page()
    page.goto(scripted.url(f"/{kind}.html"))
    wait_for(page, "log.messages.length === 1")
    assert page.evaluate("log.messages") == [[{"ping": kind}, None, None, None]]
    assert page.evaluate("log.states") == [["connecting", None, None], ["open", None, None]]
    expected = {"type": "function", "eventTarget": True}
    if kind == "module":
        expected |= {"sameExport": True, "sameGlobal": True}
    assert page.evaluate("result") == expected
    page.evaluate("socket.close()")
    wait_for(page, "log.states.length === 3")
    assert page.evaluate("log.states[2]") == ["closed", 1000, ""]
