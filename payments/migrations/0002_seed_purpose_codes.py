"""Seed the central bank's IT/ITeS purpose codes (contract: statistics.md)."""

from django.db import migrations

CODES = [
    ("9102", "Call centre services", "telecommunication"),
    ("9181", "Hardware consultancy", "computer"),
    ("9182", "Software consultancy", "computer"),
    ("9183", "Maintenance and repair of computers", "computer"),
    ("9184", "Export of computer software", "computer"),
    ("9185", "Other computer services", "computer"),
]


def seed(apps, schema_editor):
    PurposeCode = apps.get_model("payments", "PurposeCode")
    for code, description, category in CODES:
        PurposeCode.objects.update_or_create(
            code=code,
            defaults={"description": description, "category": category, "is_it": True},
        )


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
