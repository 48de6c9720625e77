"""Time a live HTML broadcast to N stream members against the same bytes pre-rendered.

One process, MemoryBackend, in-process connections (``django_ws.testing``), so the
figure is the server side's own work: ``--kind fragment`` calls
``broadcast_fragment(stream, "append", template=...)`` with N members on the live
stream socket (half htmx, half Turbo with ``--flavors both``); ``--kind prerendered``
broadcasts the htmx frame of the same fragment, rendered once beforehand, with
``raw=True`` to N members of a plain handler. Each round is timed from the call to
the moment the last member has its frame. Counts the template renders per broadcast
(a context object that counts how often the template prints it) and the frames made
per broadcast. Prints one JSON line. Bounded: ``--rounds`` rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

import django
from django.conf import settings
from django.urls import path

CARD = '<li id="card_{{ n }}" class="card"><b>{{ title }}</b> {{ body }} ({{ counter }})</li>'


class Counter:
    """Counts the renders: the template prints it once per render."""

    renders = 0

    def __str__(self) -> str:
        Counter.renders += 1
        return "r"


def configure() -> None:
    settings.configure(
        SECRET_KEY="bench-not-a-secret",
        INSTALLED_APPS=["django_ws"],
        ALLOWED_HOSTS=["*"],
        WS_BROADCAST={"BACKEND": "django_ws.broadcast.MemoryBackend"},
        WS_AUTODISCOVER=False,
        WS_MAX_SEND_QUEUE=100_000,
        ROOT_WS_URLCONF=__name__,
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "loaders": [
                        ("django.template.loaders.locmem.Loader", {"card.html": CARD})
                    ]
                },
            }
        ],
    )
    django.setup()


urlpatterns: list[Any] = []


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from django_ws import WebSocketHandler, broadcast
    from django_ws.live import broadcast_fragment, render_fragment, sign_stream
    from django_ws.live import stream as stream_module
    from django_ws.live.frames import frame_for
    from django_ws.testing import WebSocketTestClient

    class Room(WebSocketHandler):
        async def on_open(self) -> None:
            await self.join("board")

    urlpatterns.append(path("room", Room))
    wraps = 0
    real_frame_for = stream_module.frame_for

    def counting_frame_for(flavor: str, fragment: Any) -> str:
        nonlocal wraps
        wraps += 1
        return real_frame_for(flavor, fragment)

    stream_module.frame_for = counting_frame_for  # type: ignore[assignment]

    client = WebSocketTestClient()
    flavors = ["htmx", "turbo"] if args.flavors == "both" else ["htmx"]
    context = {"title": "A card", "body": "x" * 40, "counter": Counter()}
    members = []
    for index in range(args.members):
        if args.kind == "fragment":
            flavor = flavors[index % len(flavors)]
            url = f"/ws/django-ws/stream/{flavor}/{sign_stream('board')}"
        else:
            url = "/room"
        connection = client.connect(url)
        members.append((connection, await connection.__aenter__()))
    prerendered = frame_for(
        "htmx",
        render_fragment(
            "append", target="cards", template="card.html", context={**context, "n": 0}
        ),
    )
    Counter.renders = 0
    times: list[float] = []
    sizes: set[int] = set()
    for round_ in range(args.warmup + args.rounds):
        if round_ == args.warmup:
            Counter.renders, wraps = 0, 0
        started = time.perf_counter()
        if args.kind == "fragment":
            await broadcast_fragment(
                "board", "append", target="cards", template="card.html",
                context={**context, "n": round_},
            )
        else:
            await broadcast("board", prerendered, raw=True)
        for _, member in members:
            sizes.add(len(await member.receive_text(timeout=30)))
        if round_ >= args.warmup:
            times.append((time.perf_counter() - started) * 1000)
    for connection, _ in members:
        await connection.__aexit__(None, None, None)
    return {
        "kind": args.kind,
        "members": args.members,
        "rounds": args.rounds,
        "median_ms": round(statistics.median(times), 3),
        "renders_per_broadcast": Counter.renders / args.rounds,
        "frames_made_per_broadcast": wraps / args.rounds,
        "frame_bytes": sorted(sizes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kind", required=True, choices=["fragment", "prerendered"])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--flavors", choices=["htmx", "both"], default="htmx")
    args = parser.parse_args()
    configure()
    sys.modules.setdefault(__name__, sys.modules["__main__"])
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
