from django.apps import AppConfig
from django.conf import settings


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Statistics and registry"

    def ready(self) -> None:
        from payments.signals import receipts_changed
        from registry.receivers import receipts_changed_mark_stale

        receipts_changed.connect(receipts_changed_mark_stale, dispatch_uid="registry_mark_stale")
        # Safety net: recompute stale months whose on-commit task never ran.
        settings.CELERY_BEAT_SCHEDULE.setdefault(
            "registry-refresh-stale-statistics",
            {"task": "registry.tasks.statistics_refresh_task", "schedule": 300.0},
        )
