"""Receivers for signals from the lower apps (connected in RegistryConfig.ready())."""

from config.celery import enqueue_on_commit
from registry.services import statistics_mark_stale


def receipts_changed_mark_stale(sender, months, **kwargs) -> None:
    """Mark the months stale in the sender's transaction; recompute after it commits."""
    if not months:
        return
    statistics_mark_stale(months=months)

    from registry.tasks import statistics_refresh_task

    enqueue_on_commit(statistics_refresh_task)
