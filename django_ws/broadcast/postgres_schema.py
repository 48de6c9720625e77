"""The tables of the PostgreSQL backend, as SQL that the app's migration runs.

Created only on PostgreSQL databases (the migration does nothing elsewhere), so a
project on SQLite that never uses ``PostgresBackend`` gets no table. Every row
carries an ``expires`` time and the backend's heartbeat deletes what is past it:
no cron job, no table that grows without bound.

- ``django_ws_group_log``: one row per group with history (its epoch, its last
  offset, when it expires: ``TTL`` after its last message). The row lock that a
  broadcast's upsert takes is what orders a group's broadcasts.
- ``django_ws_group_message``: the last ``SIZE`` messages of each such group.
- ``django_ws_payload``: broadcasts too large for a NOTIFY, for ``PAYLOAD_TTL``.
- ``django_ws_presence``: per process and group, its member count and users.
"""

from __future__ import annotations

CREATE = """
CREATE TABLE IF NOT EXISTS django_ws_group_log (
    namespace text NOT NULL,
    group_name text NOT NULL,
    epoch text NOT NULL,
    last_offset bigint NOT NULL,
    expires timestamptz NOT NULL,
    PRIMARY KEY (namespace, group_name)
);
CREATE INDEX IF NOT EXISTS django_ws_group_log_expires
    ON django_ws_group_log (expires);
CREATE TABLE IF NOT EXISTS django_ws_group_message (
    namespace text NOT NULL,
    group_name text NOT NULL,
    epoch text NOT NULL,
    message_offset bigint NOT NULL,
    data text NOT NULL,
    exclude text NOT NULL,
    created timestamptz NOT NULL,
    expires timestamptz NOT NULL,
    PRIMARY KEY (namespace, group_name, epoch, message_offset)
);
CREATE INDEX IF NOT EXISTS django_ws_group_message_expires
    ON django_ws_group_message (expires);
CREATE TABLE IF NOT EXISTS django_ws_payload (
    id bigserial PRIMARY KEY,
    is_text boolean NOT NULL,
    body bytea NOT NULL,
    expires timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS django_ws_payload_expires ON django_ws_payload (expires);
CREATE TABLE IF NOT EXISTS django_ws_presence (
    namespace text NOT NULL,
    group_name text NOT NULL,
    process text NOT NULL,
    members integer NOT NULL,
    users text NOT NULL,
    expires timestamptz NOT NULL,
    PRIMARY KEY (namespace, group_name, process)
);
CREATE INDEX IF NOT EXISTS django_ws_presence_expires
    ON django_ws_presence (expires);
"""

DROP = """
DROP TABLE IF EXISTS django_ws_presence;
DROP TABLE IF EXISTS django_ws_payload;
DROP TABLE IF EXISTS django_ws_group_message;
DROP TABLE IF EXISTS django_ws_group_log;
"""
