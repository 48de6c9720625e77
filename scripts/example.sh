#!/usr/bin/env bash
# Run the example project on http://127.0.0.1:8000/ (Ctrl-C stops it). The
# first run builds .venv/example; later runs re-use it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

log "Virtualenv .venv/example"
# The newest Python, so the newest Django (6.x needs 3.12+); where there is no
# 3.13, pick_python takes python3 and pip the newest Django it supports.
ensure_venv .venv/example "$(pick_python 3.13)" -e ".[server,redis]"
log "htmx and Turbo for the live board (npm)"
bash scripts/ensure_npm_packages.sh || echo "WARNING: npm install failed; the live board says what to run." >&2
python=$PWD/.venv/example/bin/python

cd example
log "Database"
"$python" manage.py migrate --noinput
log "Demo user"
"$python" manage.py ensure_demo_user
log "Serving on http://127.0.0.1:8000/"
exec "$python" manage.py runserver 127.0.0.1:8000
