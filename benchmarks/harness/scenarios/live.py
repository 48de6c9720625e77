"""Live HTML: a rendered fragment to 1,000 members against the same bytes pre-rendered."""

from __future__ import annotations

import json

from ..common import HERE, SERVER_CPU, BenchError, capture
from ..context import Context
from ..targets import LIVE_TARGETS, Target
from .base import Recorder, Scenario, interleaved


def run_live(ctx: Context, targets: list[Target], rec: Recorder) -> None:
    p = ctx.params

    def measure(target: Target) -> None:
        out = capture(
            [
                *("taskset", "-c", SERVER_CPU, str(target.python)),
                str(HERE / "live_fragment.py"),
                *("--kind", dict(target.env)["BENCH_LIVE_KIND"]),
                *("--members", str(p.live_members)),
                *("--rounds", str(p.broadcast_rounds)),
                *("--warmup", str(p.broadcast_warmup_rounds)),
            ],
            180,
            cwd=HERE,
            env=ctx.environment(target),
        )
        if out.returncode:
            raise BenchError(out.stderr.strip()[-400:])
        res = json.loads(out.stdout.strip().splitlines()[-1])
        rec.add(
            f"{res['members']:,} members",
            target,
            res["median_ms"],
            renders_per_broadcast=res["renders_per_broadcast"],
            frames_made_per_broadcast=res["frames_made_per_broadcast"],
            frame_bytes=max(res["frame_bytes"]),
        )

    interleaved(rec, targets, p.broadcast_runs, measure)


LIVE_FRAGMENT = Scenario(
    "live-fragment",
    "Live HTML: a rendered fragment to every member",
    "ms from the call to the last member's frame",
    "ms",
    False,
    LIVE_TARGETS,
    run_live,
    "One process (`benchmarks/live_fragment.py`, pinned to core 0), MemoryBackend, "
    "1,000 in-process connections (`django_ws.testing`), so the figure is the "
    "server's own work without sockets. `djangows-live`: the members are on the live "
    'stream socket (htmx) and each round calls `broadcast_fragment("board", '
    '"append", template="card.html", ...)`, which renders the ~150-byte card and '
    "each process wraps it once for htmx. `djangows-prerendered`: the members are "
    "plain handlers in the group and each round broadcasts the same htmx frame, "
    "rendered once before the rounds, with `raw=True`. The time runs from the call "
    "to the moment the last member has the frame; the value per run is the median "
    "over 15 rounds (after 3 warm-up rounds). Renders per broadcast are counted by "
    "a context object that counts how often the template prints it.",
    runs_param="broadcast_runs",
)
