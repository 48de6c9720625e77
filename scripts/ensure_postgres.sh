#!/usr/bin/env bash
# Make sure PostgreSQL answers on 127.0.0.1:5432 with trust auth for the user
# postgres, and that the test database exists: installs and starts Debian's
# postgresql when none answers. Called by scripts/test.sh; safe to run again.
#
# The PostgresBackend tests use this server through the "postgres" alias of
# tests/settings.py; the tests that stop PostgreSQL start a private cluster of
# their own (initdb + postgres on a free port) and never touch this one.
set -euo pipefail

PG_DATABASE=${DJANGO_WS_TEST_PG_DATABASE:-django_ws_test}

pg_answers() {
    command -v pg_isready >/dev/null &&
        pg_isready -q -h 127.0.0.1 -p 5432 -t 3 >/dev/null 2>&1
}

echo "==> PostgreSQL on 127.0.0.1:5432"
if ! pg_answers; then
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
        apt-get update -q </dev/null || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            -o DPkg::Lock::Timeout=120 postgresql </dev/null ||
            echo "WARNING: apt-get could not install postgresql." >&2
    fi
    if command -v pg_lsclusters >/dev/null; then
        read -r version name _ < <(pg_lsclusters --no-header | head -n 1) || true
        if [[ -n ${version:-} ]]; then
            conf=/etc/postgresql/$version/$name
            # Local tests only: trust on loopback, as the suite expects.
            sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' \
                "$conf/pg_hba.conf" || true
            pg_ctlcluster "$version" "$name" start || true
        fi
    fi
    for _ in {1..50}; do
        pg_answers && break
        sleep 0.2
    done
fi
if ! pg_answers; then
    # Go on: the PostgreSQL tests then fail, each saying what is missing.
    echo "WARNING: PostgreSQL is not running; the tests that need it will fail." >&2
    exit 0
fi
echo "PostgreSQL answers."
if ! psql -h 127.0.0.1 -U postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname = '$PG_DATABASE'" postgres | grep -q 1; then
    createdb -h 127.0.0.1 -U postgres "$PG_DATABASE" ||
        echo "WARNING: could not create the database $PG_DATABASE." >&2
fi
echo "Database $PG_DATABASE is there."
