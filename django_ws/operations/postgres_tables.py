"""The tables of ``PostgresStore``, as SQL that the app's migration ``0002`` runs.

Kept apart from ``postgres_store`` so that the migration imports no psycopg: a
project on SQLite runs it too (it does nothing there). Every row carries an
``expires`` time; the refresh beat of each process deletes what is past it, in
bounded batches, so no cron job is needed.

- ``django_ws_ops_count``: per limit key (``kind``, ``value``) and process, how
  many sockets that process has open under it. A limit's total is the sum of the
  rows that have not expired.
- ``django_ws_ops_snapshot``: per process, its live-view snapshot (JSON).
"""

from __future__ import annotations

CREATE = """
CREATE TABLE IF NOT EXISTS django_ws_ops_count (
    namespace text NOT NULL,
    kind text NOT NULL,
    value text NOT NULL,
    process text NOT NULL,
    count integer NOT NULL,
    expires timestamptz NOT NULL,
    PRIMARY KEY (namespace, kind, value, process)
);
CREATE INDEX IF NOT EXISTS django_ws_ops_count_expires
    ON django_ws_ops_count (expires);
CREATE TABLE IF NOT EXISTS django_ws_ops_snapshot (
    namespace text NOT NULL,
    process text NOT NULL,
    snapshot text NOT NULL,
    expires timestamptz NOT NULL,
    PRIMARY KEY (namespace, process)
);
CREATE INDEX IF NOT EXISTS django_ws_ops_snapshot_expires
    ON django_ws_ops_snapshot (expires);
"""

DROP = """
DROP TABLE IF EXISTS django_ws_ops_snapshot;
DROP TABLE IF EXISTS django_ws_ops_count;
"""
