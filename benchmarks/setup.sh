#!/usr/bin/env bash
# Create the benchmark virtualenvs idempotently and build the load generator.
#
#   benchmarks/.venv      our checkout (editable, with its redis, server and postgres
#                         extras: psycopg for PostgresBackend and the raw LISTEN/NOTIFY
#                         floor) + Channels, Starlette, uvicorn, matplotlib
#   benchmarks/.venv-102  django-ws 1.0.2 from PyPI (it shares the import name django_ws)
#
# Usage: bash benchmarks/setup.sh            (re-running only installs what is missing)
#        PYTHON=python3.12 bash benchmarks/setup.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
python="${PYTHON:-python3}"

server_pkgs=(
    "uvicorn[standard]>=0.35"   # --ws websockets-sansio needs uvicorn 0.35
    "websockets>=13"
    "httptools"
    "uvloop"
)
main_pkgs=(
    "${server_pkgs[@]}"
    "Django>=5.2"
    "channels>=4.0,<5"
    "channels-redis>=4.2"
    "starlette"
    "redis>=5.0"
    "matplotlib"
    "python-socketio>=5.11"  # the Socket.IO peer of the scale scenarios
)

make_venv() {
    local dir="$1"
    if [[ ! -x "$dir/bin/python" ]]; then
        "$python" -m venv "$dir"
        "$dir/bin/python" -m pip install --quiet --upgrade pip
    fi
}

make_venv "$here/.venv"
"$here/.venv/bin/python" -m pip install --quiet "${main_pkgs[@]}"
# Our library: editable, so the benchmark always measures the working tree.
if [[ -f "$repo/django_ws/__init__.py" ]]; then
    "$here/.venv/bin/python" -m pip install --quiet -e "$repo[redis,server,postgres]"
else
    echo "setup.sh: $repo/django_ws/__init__.py missing; djangows targets unavailable" >&2
fi

make_venv "$here/.venv-102"
"$here/.venv-102/bin/python" -m pip install --quiet "${server_pkgs[@]}" "Django>=5.2" \
    "django-ws==1.0.2"

mkdir -p "$here/loadgen"
gcc -O2 -Wall -Wextra -o "$here/loadgen/loadgen" "$here/loadgen/loadgen.c"

echo "setup.sh: ok"
