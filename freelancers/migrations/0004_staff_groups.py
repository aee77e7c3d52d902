"""Staff roles: the Reviewers recommend, the Approvers decide (four eyes)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = {
    "Reviewers": [
        "view_freelancer",
        "recommend_application",
        "view_document",
        "view_statuschange",
        "view_recommendation",
        "view_servicecategory",
        "view_platformprofile",
        "view_education",
    ],
    "Approvers": [
        "view_freelancer",
        "approve_application",
        "view_document",
        "view_statuschange",
        "view_recommendation",
        "view_servicecategory",
        "view_platformprofile",
        "view_education",
    ],
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after migrate; create them now so the groups can hold them.
    app_config = apps.get_app_config("freelancers")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        perms = Permission.objects.filter(
            content_type__app_label="freelancers", codename__in=codenames
        )
        group.permissions.add(*perms)


class Migration(migrations.Migration):
    dependencies = [
        ("freelancers", "0003_application_documents_workflow"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
