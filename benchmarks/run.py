"""Run the django-ws benchmark suite and write docs/benchmarks.md with charts.

Each target is one uvicorn process (httptools, uvloop, websockets-sansio) pinned
to core 0; the compiled load generator (benchmarks/loadgen) is pinned to core 1
and reports its own CPU use so it can be seen not to be the bottleneck. Targets
run interleaved (run 1 of every target, then run 2, ...) and every ratio is taken
between numbers of the same invocation. The work is done by ``harness/``, one
module per job (see ``harness/__init__.py``).

    bash benchmarks/setup.sh
    benchmarks/.venv/bin/python benchmarks/run.py --scenario all
    benchmarks/.venv/bin/python benchmarks/run.py --scenario pingpong --targets raw,djangows
    benchmarks/.venv/bin/python benchmarks/run.py --smoke --scenario all --out /tmp/x

Everything listens on and talks to 127.0.0.1 only. Every loop is bounded in count
and time, and only processes started here are stopped, by PID.
"""

from __future__ import annotations

import sys

from harness.cli import main

if __name__ == "__main__":
    sys.exit(main())
