"""Receipt.iban keeps its plain index and loses the pattern-ops one (``..._like``) that Django
builds on PostgreSQL for a field's ``db_index``: no query of receipts matches an IBAN by prefix,
and every receipt recorded paid for one more random B-tree insertion (bench/RESULTS.md)."""

from django.db import migrations, models

LIKE_INDEX = "payments_receipt_iban_09361b84_like"


def drop_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {LIKE_INDEX}")


def create_like_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {LIKE_INDEX}"
            " ON payments_receipt (iban varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0005_drop_indexes_covered_by_composites"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            # The plain index stays as it is (same name); only the model's state moves it from
            # the field's db_index to Meta.indexes.
            state_operations=[
                migrations.AlterField(
                    model_name="receipt",
                    name="iban",
                    field=models.CharField(blank=True, max_length=34),
                ),
                migrations.AddIndex(
                    model_name="receipt",
                    index=models.Index(fields=["iban"], name="payments_receipt_iban_09361b84"),
                ),
            ],
            database_operations=[migrations.RunPython(drop_like_index, create_like_index)],
        ),
    ]
