"""Probe what each ASGI server does with raw ASGI events; print one JSON report per server.

Run: ``python -m tests.e2e.probe_servers [uvicorn hypercorn daphne granian]``.
It serves ``tests/e2e/apps/asgi_probe.py`` (plain ASGI, no Django) through
``django_ws.asgi_servers.ServerProcess`` and talks to it over loopback only;
every wait is bounded. ``docs/servers.md`` quotes its output.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from django_ws.asgi_servers import SERVERS, ServerProcess
from tests.e2e.safety_raw_client import OP_TEXT, RawWebSocket

APP = "tests.e2e.apps.asgi_probe:application"
REPO = Path(__file__).resolve().parent.parent.parent
MiB = 1024 * 1024


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def rss_kib(server: ServerProcess) -> int:
    total = 0
    for pid in server.process_ids():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total += next(int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:"))
    return total


async def handshake_status(port: int, path: str) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        try:
            head = await asyncio.wait_for(reader.read(4096), 5)
        except (asyncio.TimeoutError, ConnectionError) as error:
            return f"no answer ({type(error).__name__})"
        return head.split(b"\r\n", 1)[0].decode(errors="replace") or "connection closed"
    finally:
        writer.close()


async def close_of(url: str, send: Any = None, **options: Any) -> Any:
    try:
        async with connect(url, open_timeout=5, close_timeout=5, proxy=None, **options) as ws:
            if send is not None:
                await ws.send(send)
            try:
                reply = await asyncio.wait_for(ws.recv(), 10)
                return {"reply": reply[:80]}
            except ConnectionClosed as closed:
                rcvd = closed.rcvd
                return {"close": None if rcvd is None else [rcvd.code, rcvd.reason]}
    except InvalidStatus as error:
        return {"status": error.response.status_code}
    except Exception as error:  # noqa: BLE001 - reported, it is what we probe
        return {"error": repr(error)}


async def frames_for(url: str, seconds: float) -> list[str]:
    got: list[str] = []
    async with connect(url, open_timeout=5, proxy=None) as ws:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                got.append(str(await asyncio.wait_for(ws.recv(), left)))
            except (asyncio.TimeoutError, ConnectionClosed):
                break
    return got


def invalid_utf8(port: int) -> Any:
    ws = RawWebSocket.connect(port, "/echo")
    try:
        ws.send_frame(OP_TEXT, b"\xff\xfe")
        try:
            frame = ws.recv_frame(5)
        except Exception as error:  # noqa: BLE001
            return {"error": type(error).__name__}
        return {"close": [frame.close_code, frame.close_reason]} if frame.opcode == 8 else {
            "frame": frame.payload[:40].decode(errors="replace")
        }
    finally:
        ws.abort()


async def flood(server: ServerProcess, log: Path) -> dict[str, Any]:
    """A client that reads nothing; the app sends 100 MiB awaited. Does send block?"""
    before = rss_kib(server)
    slow = await asyncio.to_thread(
        RawWebSocket.connect, server.port, "/flood?count=25600&size=4096", receive_buffer=4096
    )
    try:
        await asyncio.sleep(6)
        after = rss_kib(server)
        seen = [e for e in events(log) if e.get("path") == "/flood"]
        done = [e for e in seen if e["event"] == "done"]
        progress = [e["n"] for e in seen if e["event"] == "progress"]
        return {
            "app_finished_100MiB_in_6s": bool(done),
            "sends_done_at_least": (done and 25600) or (progress[-1] if progress else 0),
            "slowest_send_s": (done or seen or [{}])[-1].get("slowest"),
            "rss_growth_MiB": round((after - before) / 1024, 1),
        }
    finally:
        slow.abort()


async def shutdown(server: ServerProcess, log: Path) -> dict[str, Any]:
    ws = await connect(server.ws_url("/shutdown"), open_timeout=5, close_timeout=5, proxy=None)
    mark = len(events(log))
    code = await asyncio.to_thread(server.stop, 15)
    try:
        await asyncio.wait_for(ws.recv(), 10)
        client = "no close"
    except ConnectionClosed as closed:
        client = None if closed.rcvd is None else [closed.rcvd.code, closed.rcvd.reason]
    except asyncio.TimeoutError:
        client = "nothing within 10 s"
    app = [
        {k: v for k, v in e.items() if k in ("event", "code", "path", "error")}
        for e in events(log)[mark:]
    ]
    return {"exit": code, "client_close": client, "app_saw_in_order": app}


async def probe(name: str) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix=f"probe_{name}_"))
    log = directory / "events.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PROBE_EVENTS": str(log), "PYTHONUNBUFFERED": "1"}
    server = ServerProcess(name, APP, env=env, cwd=REPO, graceful_timeout=5)
    server.start()
    report: dict[str, Any] = {"server": name, "command": server.command()[2:]}
    try:
        async with connect(server.ws_url("/info"), open_timeout=5, proxy=None) as ws:
            first = await asyncio.wait_for(ws.recv(), 5)
            report["info"] = json.loads(await asyncio.wait_for(ws.recv(), 5))
            report["info"]["first_frame"] = first
        async with connect(server.ws_url("/headers"), open_timeout=5, proxy=None) as ws:
            report["accept headers: x-probe"] = ws.response.headers.get("x-probe")
        report["lifespan_startup"] = [e["event"] for e in events(log) if "path" not in e]
        for path in ("/deny?code=1000", "/deny?code=4003", "/deny-http"):
            report[f"handshake {path}"] = await handshake_status(server.port, path)
        for code, reason in ((1000, "bye"), (1001, "away"), (1007, "bad"), (1008, "policy"),
                             (1009, "big"), (1011, "oops"), (1012, "restart"), (4000, "app")):
            url = server.ws_url(f"/close?code={code}&reason={reason}")
            report[f"close {code} {reason}"] = (await close_of(url))
        report["close 1000 without reason"] = await close_of(server.ws_url("/close?code=1000"))
        report["unawaited (1.5 s)"] = await frames_for(server.ws_url("/unawaited"), 1.5)
        report["ticks every 0.2 s (1.5 s)"] = len(await frames_for(server.ws_url("/ticks"), 1.5))
        report["invalid utf-8 text"] = await asyncio.to_thread(invalid_utf8, server.port)
        for size in (MiB + 1, 16 * MiB + 1):
            report[f"message of {size} B"] = await close_of(
                server.ws_url("/echo"), b"x" * size, max_size=None
            )
        report["flood"] = await flood(server, log)
        report["shutdown"] = await shutdown(server, log)
    finally:
        server.stop(10)
        report["log_tail"] = server.log_text()[-1200:]
    return report


async def main(names: list[str]) -> None:
    for name in names:
        try:
            print(json.dumps(await probe(name), indent=1, default=repr), flush=True)
        except Exception as error:  # noqa: BLE001 - report and go on to the next server
            print(json.dumps({"server": name, "probe failed": repr(error)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or list(SERVERS)))
