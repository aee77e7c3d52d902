"""Celery tasks: thin wrappers over the services (routed to the ``batch`` queue)."""

from celery import shared_task

from registry.services import statistics_refresh


@shared_task(name="registry.tasks.statistics_refresh_task")
def statistics_refresh_task() -> int:
    """Recompute stale statistics periods. Safe to run twice or on two workers at once."""
    return statistics_refresh()
