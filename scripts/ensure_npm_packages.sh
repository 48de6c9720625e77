#!/usr/bin/env bash
# Install the client libraries that the live HTML pages load (htmx, its ws
# extension, Turbo) into node_modules/ (git-ignored), at the versions pinned by
# package.json and package-lock.json. Used by scripts/test.sh (the browser
# tests) and scripts/example.sh (the example's live board). Safe to run again:
# nothing is fetched when node_modules matches the lock file.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v npm >/dev/null; then
    echo "WARNING: npm is missing (apt-get install npm); the live HTML browser" \
        "tests will fail, saying node_modules/ is missing." >&2
    exit 0
fi
# A copy of the lock file that node_modules was installed from.
stamp=node_modules/.django-ws-installed-lock.json
if cmp -s package-lock.json "$stamp" 2>/dev/null; then
    echo "node_modules is up to date."
    exit 0
fi
timeout 300 npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
