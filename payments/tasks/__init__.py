"""Celery autodiscovers ``payments.tasks``; the tasks live in one module per area."""

from payments.tasks import banks, incentives, stripe  # noqa: F401
