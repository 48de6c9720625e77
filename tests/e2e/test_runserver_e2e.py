"""``manage.py runserver`` of the example project, as a user runs it.

It must serve pages, static files and WebSockets from one port, reload when the
code changes, and say what to install when uvicorn is missing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus, WebSocketException

from tests.browser.example_server import EXAMPLE_DIR, ExampleServer, copy_example
from tests.live_server import free_port, port_accepts

RELOAD_TIMEOUT = 30.0


def http_get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


async def classic_reply(server: ExampleServer, data: Any) -> tuple[Any, Any]:
    """Open the classic socket, send ``data``; return the greeting and the reply."""
    async with connect(server.ws_url("/ws"), open_timeout=5, close_timeout=5) as ws:
        greeting = json.loads(await asyncio.wait_for(ws.recv(), 5))
        await ws.send(json.dumps(data))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return greeting, reply


@pytest.fixture
def example() -> Any:
    with ExampleServer() as server:
        server.start()
        yield server
        print(f"--- runserver log:\n{server.log_text()}")


async def test_runserver_serves_pages_static_files_and_websockets_on_one_port(
    example: ExampleServer,
) -> None:
    status, body = await asyncio.to_thread(http_get, example.url("/"))
    assert status == 200
    assert b"<title>django-ws example</title>" in body

    status, body = await asyncio.to_thread(http_get, example.url("/static/example.css"))
    assert (status, body) == (200, (EXAMPLE_DIR / "static" / "example.css").read_bytes())

    greeting, reply = await classic_reply(example, {"n": 1})
    assert greeting == {"hello": "AnonymousUser"}
    assert reply == {"reply": "sending data back", "you_sent": {"n": 1}, "count": 1}

    with pytest.raises(InvalidStatus) as refused:
        async with connect(example.ws_url("/ws/chat/lobby"), open_timeout=5):
            pass
    assert refused.value.response.status_code == 403

    log = example.log_text()
    assert f"Starting ASGI/WebSocket development server at {example.url('/')}\n" in log
    assert "Serving exampleproject.asgi.application with uvicorn " in log


async def test_runserver_reloads_the_code_after_a_change(tmp_path: Path) -> None:
    project = copy_example(tmp_path / "example")
    with ExampleServer(project_dir=project, reload=True) as server:
        server.start()
        _, reply = await classic_reply(server, "before")
        assert reply["reply"] == "sending data back"
        await asyncio.sleep(1.5)  # the reloader's first scan records the files' times
        open_during_reload = await connect(server.ws_url("/ws"), open_timeout=5)

        module = project / "classic" / "ws.py"
        module.write_text(module.read_text().replace('"sending data back"', '"reloaded"'))
        # The old process closes its sockets (1012, service restart) before it leaves.
        await asyncio.wait_for(open_during_reload.wait_closed(), RELOAD_TIMEOUT)
        assert open_during_reload.close_code == 1012

        deadline = time.monotonic() + RELOAD_TIMEOUT
        while True:
            try:
                _, reply = await classic_reply(server, "after")
            except (OSError, asyncio.TimeoutError, WebSocketException):
                reply = None  # between the old process and the new one
            if reply is not None and reply["reply"] == "reloaded":
                break
            assert time.monotonic() < deadline, f"No reload within {RELOAD_TIMEOUT} s:\n{server.log_text()}"
            await asyncio.sleep(0.3)
        assert reply == {"reply": "reloaded", "you_sent": "after", "count": 1}
        assert f"{module} changed, reloading." in server.log_text()


def run_manage(args: list[str], prelude: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the example's manage.py in a fresh interpreter, after ``prelude``."""
    code = (
        f"{prelude}\n"
        "import runpy, sys\n"
        f"sys.argv = ['manage.py', *{args!r}]\n"
        "runpy.run_path('manage.py', run_name='__main__')\n"
    )
    with ExampleServer() as server:  # for its environment and its own database
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=EXAMPLE_DIR,
            env=server.environment(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


BLOCK_UVICORN = """
import sys

class BlockUvicorn:
    \"\"\"Make uvicorn look uninstalled.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name == "uvicorn" or name.startswith("uvicorn."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, BlockUvicorn())
"""


def test_runserver_without_uvicorn_says_how_to_install_it() -> None:
    port = free_port()
    result = run_manage(["runserver", "--noreload", f"127.0.0.1:{port}"], BLOCK_UVICORN)
    assert result.returncode == 1
    assert result.stderr == (
        "CommandError: runserver serves WebSockets with uvicorn, which is not installed "
        "(No module named 'uvicorn'). Install it with: pip install \"django-ws[server]\"\n"
    )
    assert not port_accepts(port)


@pytest.mark.parametrize("reload", [False, True], ids=["noreload", "reload"])
def test_runserver_exits_when_the_port_is_taken(reload: bool) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["runserver", *([] if reload else ["--noreload"]), f"127.0.0.1:{port}"]
        result = run_manage(args)
    assert result.returncode == 1
    assert "address already in use" in result.stderr
