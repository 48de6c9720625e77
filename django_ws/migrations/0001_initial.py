"""The PostgreSQL backend's tables (``django_ws.broadcast.postgres_schema``).

Run on PostgreSQL databases only: elsewhere this migration is recorded and does
nothing, since no other database can carry ``PostgresBackend``.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

from django_ws.broadcast.postgres_schema import CREATE, DROP


def _run_on_postgresql(sql: str) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    initial = True
    operations = [
        migrations.RunPython(_run_on_postgresql(CREATE), _run_on_postgresql(DROP)),
    ]
