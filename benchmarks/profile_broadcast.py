"""Count a broadcast's CPU instructions per delivery: ``profile.sh instructions broadcast``.

Run by ``profile.sh`` against a server under callgrind: a small warm-up broadcast
run first, then N members join, and the counters are zeroed once every member has
answered its echo ("ready") and dumped once the last round is received ("done"), so
the count holds the broadcasts only, not the joins. Prints the deliveries counted.

    python3 profile_broadcast.py SERVER_PID PORT ROOM_PATH TRIGGER_PATH MEMBERS ROUNDS
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

LOADGEN = Path(__file__).resolve().parent / "loadgen" / "loadgen"


def run(
    port: str, room: str, trigger: str, members: int, rounds: int, pid: str | None
) -> None:
    cmd = [
        *("taskset", "-c", "1", str(LOADGEN), "--mode", "broadcast", "--port", port),
        *("--path", room, "--trigger-path", trigger, "--connections", str(members)),
        *("--count", str(rounds), "--warmup-rounds", "0", "--gap", "0"),
        *("--wait-stdin", "--timeout", "600"),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    result = None
    for line in proc.stdout:
        data = json.loads(line)
        event = data.get("event")
        if event is not None:
            if pid is not None:
                action = "-z" if event == "ready" else "-d"
                subprocess.run(
                    ["callgrind_control", action, pid], capture_output=True, check=True
                )
            proc.stdin.write("\n")
            proc.stdin.flush()
        else:
            result = data
    proc.wait(timeout=60)
    if result is None or not result.get("ok") or result.get("missed"):
        raise SystemExit(f"broadcast run failed: {result}")


def main() -> None:
    pid, port, room, trigger, members, rounds = sys.argv[1:7]
    run(port, room, trigger, 50, 3, None)  # warm-up: first-use imports and caches
    run(port, room, trigger, int(members), int(rounds), pid)
    print(int(members) * int(rounds))


if __name__ == "__main__":
    main()
