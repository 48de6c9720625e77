"""The group history scenarios' client: Python (websockets), one connection at a time.

The C load generator has no way to offer ``ws_since`` and follow a replay, so
these scenarios use this client, pinned to the load generator's core. It keeps
a *witness* member of the group "room" connected throughout (it sees every
message with its epoch and offset) and a trigger connection that broadcasts.

``--mode recovery``: each repeat, the trigger broadcasts ``--missed`` messages
after the witness's position; then a new client connects to ``/room`` offering
that position in ``ws_since`` and the time from before its TCP connect to the
last replayed frame is taken (the recovery frame must say ``recovered: true``
and ``missed`` = ``--missed``, the offsets must follow on); then a fresh client
connects to ``/room`` without ``ws_since``, sends one broadcast itself and the
time from before its connect to that first live frame is taken.

``--mode fill``: broadcasts ``--warmup`` messages, prints ``{"event": "ready"}``
and waits for a line on stdin (the runner reads the server's RSS), broadcasts
``--messages`` more, waits until the witness has them all, prints
``{"event": "done"}`` and waits again.

Prints one JSON line with the results. Loopback only; every wait is bounded by
``--timeout``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import urllib.parse
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

GROUP = "room"


class Witness:
    """A member of the group that records the last position it received."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.epoch = ""
        self.offset = 0
        self.changed = asyncio.Event()

    async def read(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            if frame.get("group") == GROUP and "data" in frame:
                self.epoch, self.offset = frame["epoch"], frame["offset"]
                self.changed.set()

    async def reach(self, offset: int, deadline: float) -> None:
        while self.offset < offset:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), deadline - time.monotonic())


async def synced(ws: ClientConnection) -> None:
    """Wait for one echo: the socket's ``on_open`` (its join) has then finished."""
    await ws.send(json.dumps({"type": "echo", "n": 0}))
    while json.loads(await ws.recv()).get("n") != 0:
        pass


async def broadcast(trigger: ClientConnection, count: int, first_seq: int) -> None:
    for seq in range(first_seq, first_seq + count):
        await trigger.send(json.dumps({"type": "broadcast", "seq": seq, "p": "x" * 60}))


async def recover(url: str, epoch: str, offset: int, missed: int) -> float:
    """Connect offering ``(epoch, offset)``; return ms until the last replayed frame."""
    since = json.dumps({GROUP: [epoch, offset]}, separators=(",", ":"))
    query = urllib.parse.urlencode({"ws_since": since})
    started = time.perf_counter()
    async with connect(f"{url}/room?{query}", max_size=None) as ws:
        head = json.loads(await ws.recv())
        if head.get("recovered") is not True or head.get("missed") != missed:
            raise RuntimeError(
                f"expected recovered: true, missed: {missed}; got {head}"
            )
        for expected in range(offset + 1, offset + missed + 1):
            frame = json.loads(await ws.recv())
            if frame.get("offset") != expected:
                raise RuntimeError(f"expected offset {expected}; got {frame}")
        return (time.perf_counter() - started) * 1000


async def fresh_join(url: str, seq: int) -> float:
    """Connect without ``ws_since``; return ms until its own first live broadcast."""
    started = time.perf_counter()
    async with connect(f"{url}/room", max_size=None) as ws:
        await ws.send(json.dumps({"type": "broadcast", "seq": seq, "p": "x" * 60}))
        frame = json.loads(await ws.recv())
        if frame.get("data", {}).get("seq") != seq:
            raise RuntimeError(f"expected the live broadcast {seq}; got {frame}")
        return (time.perf_counter() - started) * 1000


def wait_for_runner() -> None:
    sys.stdout.flush()
    sys.stdin.readline()


async def main(args: argparse.Namespace) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{args.port}"
    deadline = time.monotonic() + args.timeout
    async with (
        connect(f"{url}/room", max_size=None) as member,
        connect(f"{url}/trigger", max_size=None) as trigger,
    ):
        await synced(member)
        witness = Witness(member)
        reader = asyncio.create_task(witness.read())
        seq = 0
        try:
            if args.mode == "fill":
                await broadcast(trigger, args.warmup, seq)
                seq += args.warmup
                await witness.reach(args.warmup, deadline)
                print(json.dumps({"event": "ready", "offset": witness.offset}))
                await asyncio.to_thread(wait_for_runner)
                await broadcast(trigger, args.messages, seq)
                await witness.reach(args.warmup + args.messages, deadline)
                print(json.dumps({"event": "done", "offset": witness.offset}))
                await asyncio.to_thread(wait_for_runner)
                return {"ok": True, "offset": witness.offset}
            await broadcast(trigger, 1, seq)  # the epoch, and a position to offer
            seq += 1
            await witness.reach(1, deadline)
            recovery_ms, fresh_ms = [], []
            for _ in range(args.repeats):
                epoch, offset = witness.epoch, witness.offset
                await broadcast(trigger, args.missed, seq)
                seq += args.missed
                await witness.reach(offset + args.missed, deadline)
                recovery_ms.append(
                    await asyncio.wait_for(
                        recover(url, epoch, offset, args.missed),
                        deadline - time.monotonic(),
                    )
                )
                fresh_ms.append(
                    await asyncio.wait_for(
                        fresh_join(url, seq), deadline - time.monotonic()
                    )
                )
                seq += 1
                await witness.reach(offset + args.missed + 1, deadline)
            return {
                "ok": True,
                "recovery_ms": recovery_ms,
                "fresh_ms": fresh_ms,
                "recovery_median_ms": statistics.median(recovery_ms),
                "fresh_median_ms": statistics.median(fresh_ms),
            }
        finally:
            reader.cancel()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("recovery", "fill"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--missed", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--messages", type=int, default=10000)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=120)
    arguments = parser.parse_args()
    try:
        result = asyncio.run(main(arguments))
    except Exception as error:  # reported to the runner, which fails the target
        result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
    print(json.dumps(result), flush=True)
