"""Admin search by the start of a name: Django turns ``full_name__istartswith`` into
``UPPER(full_name::text) LIKE UPPER('abc%')``. On PostgreSQL only an expression index with
text_pattern_ops serves a LIKE prefix under a non-C collation; SQLite (the demo) needs none."""

from django.db import migrations

INDEX = "freelancer_name_prefix_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {INDEX} ON freelancers_freelancer '
            '((UPPER("full_name"::text)) text_pattern_ops)'
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("freelancers", "0004_staff_groups")]
    operations = [migrations.RunPython(create, drop)]
