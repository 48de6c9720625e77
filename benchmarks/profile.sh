#!/usr/bin/env bash
# Count what one connection or one round trip costs the server, repeatably:
# CPU instructions (valgrind callgrind) and system calls (strace -c).
#
#   bash benchmarks/profile.sh instructions churn raw djangows djangows-auth
#   bash benchmarks/profile.sh syscalls pingpong raw djangows djangows102
#   LOADGEN_ARGS="--handshake browser" bash benchmarks/profile.sh instructions churn raw djangows
#   bash benchmarks/profile.sh instructions broadcast raw djangows   # per delivery, 1,000 members
#
# LOADGEN_ARGS is added to every loadgen command line (say, the browser's handshake
# headers, or another close order: see `benchmarks/loadgen/loadgen --help`).
# Timed runs on a shared 2-core machine drift by 5-10% between runs; instruction
# and system-call counts do not (the same code gives the same count within ~0.1%),
# so they show what a change costs before the timed benchmark confirms it.
# callgrind slows the server about 50x: the loadgen runs 8 s against it after a
# 2 s warm-up, and the counters are zeroed in between. Counts exclude the kernel.
# Needs `bash benchmarks/setup.sh`, valgrind and strace (Debian packages).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tool=${1:?usage: profile.sh instructions|syscalls churn|pingpong TARGET...}
mode=${2:?usage: profile.sh instructions|syscalls churn|pingpong TARGET...}
shift 2
[[ $tool == instructions || $tool == syscalls ]] || { echo "unknown tool $tool" >&2; exit 2; }
[[ $mode == churn || $mode == pingpong || $mode == broadcast ]] || { echo "unknown scenario $mode" >&2; exit 2; }
[[ $mode != broadcast || $tool == instructions ]] || { echo "broadcast: instructions only" >&2; exit 2; }
connections=$([[ $mode == churn ]] && echo 20 || echo 50)
unit=$([[ $mode == churn ]] && echo "connection" || echo "round trip")
[[ $mode == broadcast ]] && unit="delivery (${BROADCAST_MEMBERS:=1000} members, ${BROADCAST_ROUNDS:=20} rounds)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# target -> python, app, lifespan, path, environment
target_args() {
    local venv=$here/.venv/bin/python dj="DJANGO_SETTINGS_MODULE=djangows_project.settings"
    case $1 in
        raw) echo "$venv raw:app on /echo" ;;
        djangows) echo "$venv djangows_project.asgi:application on /echo $dj BENCH_AUTH=0" ;;
        djangows-auth) echo "$venv djangows_project.asgi:application on /echo $dj BENCH_AUTH=1" ;;
        djangows-dsl) echo "$venv djangows_project.asgi:application on /dsl/echo $dj BENCH_AUTH=0" ;;
        djangows102) echo "$here/.venv-102/bin/python djangows102_project.asgi:application off /echo DJANGO_SETTINGS_MODULE=djangows102_project.settings" ;;
        *) echo "unknown target $1 (raw, djangows, djangows-auth, djangows-dsl, djangows102)" >&2; return 2 ;;
    esac
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

loadgen() {  # port duration
    taskset -c 1 "$here/loadgen/loadgen" --mode "$mode" --port "$1" --path "$path" \
        --connections "$connections" --duration "$2" --warmup 0 --timeout 120 ${LOADGEN_ARGS:-}
}

completed() {
    python3 -c 'import json,sys; d=json.loads(sys.stdin.read().splitlines()[-1]); print(d.get("completed_total") or d["completed"])'
}

for target in "$@"; do
    read -r python app lifespan path env_vars < <(target_args "$target")
    port=$(free_port)
    wrap=()
    if [[ $tool == instructions ]]; then
        wrap=(valgrind --tool=callgrind "--callgrind-out-file=$work/$target.%p")
    fi
    # shellcheck disable=SC2086
    (cd "$here/apps" && exec env $env_vars BENCH_DB="$work/db.sqlite3" taskset -c 0 \
        "${wrap[@]}" "$python" -m uvicorn "$app" --app-dir . --host 127.0.0.1 \
        --port "$port" --http httptools --loop uvloop --ws websockets-sansio \
        --lifespan "$lifespan" --log-level warning --no-access-log) \
        >"$work/$target.log" 2>&1 &
    server=$!
    for _ in $(seq 600); do
        (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
    done
    if [[ $mode == broadcast ]]; then
        # Zeroed once every member joined, dumped after the last round: broadcasts only.
        n=$(python3 "$here/profile_broadcast.py" "$server" "$port" "${path%/echo}/room" \
            "${path%/echo}/trigger" "$BROADCAST_MEMBERS" "$BROADCAST_ROUNDS")
        sleep 1
        kill -INT "$server"; wait "$server" 2>/dev/null || true
        total=$(grep -h -m1 '^summary:' "$work/$target".*.1 | awk '{print $2}')
        printf '%-15s %12s instructions per %s (%s done)\n' "$target" \
            "$(python3 -c "print(f'{$total / $n:,.0f}')")" "$unit" "$n"
        continue
    fi
    loadgen "$port" 2 >/dev/null  # warm-up
    if [[ $tool == instructions ]]; then
        callgrind_control -z "$server" >/dev/null
        n=$(loadgen "$port" 8 | completed)
        callgrind_control -d "$server" >/dev/null
        sleep 1
        kill -INT "$server"; wait "$server" 2>/dev/null || true
        total=$(grep -h -m1 '^summary:' "$work/$target".*.1 | awk '{print $2}')
        printf '%-15s %12s instructions per %s (%s done)\n' "$target" \
            "$(python3 -c "print(f'{$total / $n:,.0f}')")" "$unit" "$n"
    else
        strace -c -f -p "$server" -o "$work/$target.strace" 2>/dev/null &
        tracer=$!
        sleep 1
        n=$(loadgen "$port" 3 | completed)
        kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
        kill -INT "$server"; wait "$server" 2>/dev/null || true
        echo "$target: system calls per $unit ($n done)"
        awk -v n="$n" 'NR > 2 && $4 ~ /^[0-9]+$/ { printf "  %-16s %6.2f\n", $NF, $4 / n }' \
            "$work/$target.strace" | sort -k2 -rn | head -8
    fi
done
