"""Seed the service categories a freelancer can pick, each marked IT or non-IT."""

from django.db import migrations

CATEGORIES = [
    ("software-development", "Software development", True),
    ("web-development", "Web development", True),
    ("mobile-apps", "Mobile apps", True),
    ("graphic-design", "Graphic design", True),
    ("content-writing", "Content writing", False),
    ("translation", "Translation", False),
    ("digital-marketing", "Digital marketing", True),
    ("virtual-assistance", "Virtual assistance", True),
    ("call-centre", "Call centre", True),
    ("other", "Other", False),
]


def seed(apps, schema_editor):
    ServiceCategory = apps.get_model("freelancers", "ServiceCategory")
    for slug, name, is_it in CATEGORIES:
        ServiceCategory.objects.update_or_create(slug=slug, defaults={"name": name, "is_it": is_it})


class Migration(migrations.Migration):
    dependencies = [("freelancers", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
