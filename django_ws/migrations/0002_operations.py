"""The operations store's tables (``django_ws.operations.postgres_tables``).

Run on PostgreSQL databases only, like ``0001``: elsewhere this migration is
recorded and does nothing.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

from django_ws.operations.postgres_tables import CREATE, DROP


def _run_on_postgresql(sql: str) -> Any:
    def run(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    dependencies = [("django_ws", "0001_initial")]
    operations = [
        migrations.RunPython(_run_on_postgresql(CREATE), _run_on_postgresql(DROP)),
    ]
