"""Check the load generator's WebSocket framing against a strict stdlib server.

The server verifies the handshake key and that every client frame is masked,
answers each text message with a ping followed by the echo split into three
fragments (so 16-bit and 64-bit lengths, continuation frames and pong replies
are all exercised), and performs the close handshake the RFC way (server
closes TCP first). Usage: python benchmarks/loadgen/selftest.py [path/to/loadgen]
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
import subprocess
import sys
from pathlib import Path

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
# The loadgen's error counters; benchmarks/run.py sums the same ones.
ERROR_FIELDS = (
    "connect_errors",
    "handshake_errors",
    "protocol_errors",
    "mismatches",
    "unexpected_closes",
    "close_timeouts",
)
stats = {"pongs": 0, "pings": 0, "texts": 0, "closes": 0, "browser_handshakes": 0, "errors": []}


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack("!H", n)
    else:
        head += bytes([127]) + struct.pack("!Q", n)
    return head + payload


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    if not b1 & 0x80:
        stats["errors"].append("unmasked client frame")
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
    data = bytearray(await reader.readexactly(n))
    for i in range(n):
        data[i] ^= mask[i & 3]
    return b0 & 0x0F, bytes(data)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    if KEY not in head or b"Upgrade: websocket" not in head:
        stats["errors"].append("bad handshake request")
    if b"\r\nOrigin: http://127.0.0.1:" in head and b"\r\nUser-Agent: Mozilla/" in head:
        stats["browser_handshakes"] += 1
    accept = base64.b64encode(hashlib.sha1(KEY + GUID).digest())
    writer.write(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )
    try:
        while True:
            opcode, data = await read_frame(reader)
            if opcode == 0x1:
                stats["texts"] += 1
                json.loads(data)
                stats["pings"] += 1
                writer.write(frame(0x9, b"hi"))
                third = max(1, len(data) // 3)
                parts = [data[:third], data[third : 2 * third], data[2 * third :]]
                writer.write(frame(0x1, parts[0], fin=False))
                writer.write(frame(0x0, parts[1], fin=False))
                writer.write(frame(0x0, parts[2], fin=True))
            elif opcode == 0xA:
                if data != b"hi":
                    stats["errors"].append("bad pong payload")
                stats["pongs"] += 1
            elif opcode == 0x8:
                stats["closes"] += 1
                writer.write(frame(0x8, data[:2]))
                break
            else:
                stats["errors"].append(f"unexpected opcode {opcode}")
            await writer.drain()
        await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    writer.close()


async def run_loadgen(loadgen: str, port: int, *args: str) -> dict:
    proc = await asyncio.create_subprocess_exec(
        loadgen, "--port", str(port), "--timeout", "30", *args, stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return json.loads(out.decode().strip().splitlines()[-1])


async def main(loadgen: str) -> int:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    failures = []
    cases = [
        ("pingpong", "--connections", "3", "--duration", "0.5", "--warmup", "0.1"),
        *(
            ("pingpong", "--connections", "1", "--duration", "0.3", "--warmup", "0")
            + ("--payload", size)
            for size in ("300", "70000")
        ),
        ("churn", "--connections", "4", "--duration", "0.5", "--warmup", "0.1"),
        ("churn", "--connections", "2", "--duration", "0.3", "--warmup", "0")
        + ("--handshake", "browser", "--close", "abrupt"),
        ("idle", "--connections", "3", "--duration", "0.2", "--idle-echo"),
    ]
    for mode, *args in cases:
        before = dict(stats)
        result = await run_loadgen(loadgen, port, "--mode", mode, *args)
        errors = [k for k in ERROR_FIELDS if result[k]]
        done = result["completed"] if mode != "idle" else result["opened"]
        if not result["ok"] or errors or done == 0:
            failures.append(f"{mode} {args}: {errors} {result}")
        if "browser" in args and stats["browser_handshakes"] == before["browser_handshakes"]:
            failures.append(f"{mode} {args}: no browser handshake headers")
        if "--idle-echo" in args and stats["texts"] - before["texts"] != 3:
            failures.append(f"{mode} {args}: {stats['texts'] - before['texts']} echoes, not 3")
        if stats["pongs"] - before["pongs"] != stats["pings"] - before["pings"]:
            failures.append(f"{mode} {args}: pings and pongs differ")
        print(f"{mode:9} {' '.join(args):60} completed={done}")
    server.close()
    failures += stats["errors"]
    for failure in failures:
        print("FAIL", failure)
    print("loadgen selftest:", "FAILED" if failures else "ok")
    return 1 if failures else 0


if __name__ == "__main__":
    default = Path(__file__).with_name("loadgen")
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else str(default))))
