#!/usr/bin/env bash
# The test command: set up what the suite needs (Redis, Chromium, one virtualenv
# per supported Django line), then run pytest in each. Arguments go to pytest:
#
#   bash scripts/test.sh
#   bash scripts/test.sh -k live_server -x
#
# Safe to run again: running services and built virtualenvs are re-used.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

# Each pytest run is capped, so that a hang cannot use up CI's 90 minutes.
RUN_TIMEOUT=${DJANGO_WS_TEST_RUN_TIMEOUT:-1800}
CHROMIUM=/usr/bin/chromium

apt_updated=false

# apt_install PACKAGE...: install Debian packages, updating the lists once.
apt_install() {
    if ! $apt_updated; then
        apt-get update -q </dev/null || return 1
        apt_updated=true
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -o DPkg::Lock::Timeout=120 "$@" </dev/null
}

redis_answers() {
    if command -v redis-cli >/dev/null; then
        [[ $(timeout 5 redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null) == PONG ]]
    else
        python3 - <<'PY' >/dev/null 2>&1
import socket

with socket.create_connection(("127.0.0.1", 6379), timeout=2) as sock:
    sock.sendall(b"PING\r\n")
    assert sock.recv(16).startswith(b"+PONG")
PY
    fi
}

# The shared Redis on 6379 serves the redis_url fixture; tests that stop a
# Redis start their own redis-server on another port and never touch this one.
ensure_redis() {
    log "Redis on 127.0.0.1:6379"
    if redis_answers; then
        echo "Redis answers."
        return 0
    fi
    if ! command -v redis-server >/dev/null; then
        apt_install redis-server || echo "WARNING: apt-get could not install redis-server." >&2
    fi
    if command -v redis-server >/dev/null; then
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
            --save "" --appendonly no --dir /var/lib/redis \
            --logfile /var/log/redis/ci.log || true
        for _ in {1..50}; do
            redis_answers && { echo "Redis started."; return 0; }
            sleep 0.2
        done
    fi
    # Go on: the Redis tests then fail, each saying Redis is unreachable.
    echo "WARNING: Redis is not running; the tests that need it will fail." >&2
}

ensure_chromium() {
    log "Chromium for browser tests"
    if [[ ! -x $CHROMIUM ]]; then
        apt_install chromium chromium-driver ||
            echo "WARNING: apt-get could not install chromium." >&2
    fi
    if [[ -x $CHROMIUM ]]; then
        "$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM is there."
    else
        # Not skipped: the browser tests fail, saying Chromium is missing.
        echo "WARNING: $CHROMIUM is missing; browser tests will fail." >&2
    fi
}

# summarize REPORT...: print pytest's counts over all runs as one closing line.
summarize() {
    ".venv/${ENVS[-1]}/bin/python" - "$@" <<'PY'
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        suites = ET.parse(path).getroot().iter("testsuite")
    except ET.ParseError:
        continue
    for suite in suites:
        tests, failures, errors, skips = (
            int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")
        )
        passed += tests - failures - errors - skips
        failed += failures + errors
        skipped += skips
print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
PY
}

ensure_redis
export DJANGO_WS_TEST_REDIS_SERVER=${DJANGO_WS_TEST_REDIS_SERVER:-$(command -v redis-server || true)}
ensure_chromium
log "npm packages for the live HTML browser tests"
command -v npm >/dev/null || apt_install npm || echo "WARNING: apt-get could not install npm." >&2
bash scripts/ensure_npm_packages.sh || echo "WARNING: npm install failed." >&2

# The oldest supported pair, and each newer Django on the Python it needs (6.x:
# 3.12+). The newest environment is last: it runs the benchmark smoke and
# every server of the end-to-end matrix.
ENVS=(py310-dj52 py312-dj60 py313-dj61)
log "Virtualenvs ${ENVS[*]}"
SECONDS=0
ensure_venv .venv/py310-dj52 "$(pick_python 3.10)" \
    -e ".[test,redis,server]" "Django>=5.2,<6.0"
ensure_venv .venv/py312-dj60 "$(pick_python 3.12)" \
    -e ".[test,redis,server]" "Django>=6.0,<6.1"
ensure_venv .venv/py313-dj61 "$(pick_python 3.13)" \
    -e ".[test,redis,server]" "Django>=6.1,<6.2"
echo "Virtualenvs ready in ${SECONDS}s."

reports=$(mktemp -d)
trap 'rm -rf "$reports"' EXIT
results=()
status=0
for env in "${ENVS[@]}"; do
    python=.venv/$env/bin/python
    log "$env: $("$python" -V), Django $("$python" -m django --version): pytest $*"
    code=0
    # --foreground keeps pytest in this process group, so Ctrl-C and a kill of
    # the group reach it and the servers it started.
    # The benchmark smoke run, the tests marked newest_env (browsers, clusters,
    # restarts) and the servers other than uvicorn need one environment only:
    # the newest. A DJANGO_WS_TEST_SERVERS set by the caller wins.
    marks=()
    servers=uvicorn,hypercorn,daphne,granian
    if [[ $env != "${ENVS[-1]}" ]]; then
        marks=(-m "not bench_smoke and not newest_env")
        servers=uvicorn
    fi
    DJANGO_WS_TEST_SERVERS=${DJANGO_WS_TEST_SERVERS:-$servers} \
        timeout --foreground --kill-after=30 "$RUN_TIMEOUT" \
        "$python" -m pytest --junitxml="$reports/$env.xml" "${marks[@]}" "$@" || code=$?
    case $code in
        0) results+=("$env: passed") ;;
        5) results+=("$env: FAILED, no tests collected") ;;
        124) results+=("$env: FAILED, timed out after ${RUN_TIMEOUT}s") ;;
        *) results+=("$env: FAILED, pytest exit code $code") ;;
    esac
    [[ $code == 0 ]] || status=1
done

log "Summary"
printf '%s\n' "${results[@]}"
shopt -s nullglob
written=("$reports"/*.xml)
shopt -u nullglob
# Last, so that pytest's counts close the output (a run cut short by the
# timeout writes no report, and its env line above says so).
if ((${#written[@]})); then
    summarize "${written[@]}"
fi
exit "$status"
