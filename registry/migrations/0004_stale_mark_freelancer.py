from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def fill_freelancers(apps, schema_editor):
    """Marks already written name their receipt's freelancer, as new ones do."""
    mark_model = apps.get_model("registry", "StatisticsStaleMark")
    receipt_model = apps.get_model("payments", "Receipt")
    mark_model.objects.filter(receipt_id__isnull=False).update(
        freelancer_id=Subquery(
            receipt_model.objects.filter(id=OuterRef("receipt_id")).values("freelancer_id")[:1]
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0001_initial"),
        ("registry", "0003_stale_mark_receipt"),
    ]

    operations = [
        migrations.AddField(
            model_name="statisticsstalemark",
            name="freelancer_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(fill_freelancers, migrations.RunPython.noop),
    ]
