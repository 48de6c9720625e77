"""The benchmark runner behind ``benchmarks/run.py``, one module per job.

- ``common``: where things are, which core runs what, ``BenchError``, ``log``.
- ``params``: counts and durations, full and ``--smoke``.
- ``targets``: the implementations under test (what each server runs).
- ``processes``: starting and stopping uvicorn and redis-server, by PID.
- ``loadgen``: building, self-testing and running the C load generator.
- ``context``: one invocation's state (capabilities, databases, sessions) and
  a target's server in it.
- ``capabilities``: what the benchmark venvs can run.
- ``scenarios``: one module per scenario family, registered in order.
- ``summary``: medians of runs and how numbers are printed.
- ``checks``: the performance issue's targets and whether they are met.
- ``report``, ``charts``: docs/benchmarks.md and its charts.
- ``probes``: the machine, its speed right now, the versions installed.
- ``cli``: the command line.
"""
