"""The Celery app. Tasks live in each app's tasks.py and are autodiscovered."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Send ``task`` to the broker once the current transaction commits.

    Never fails the caller: the change itself is already committed and durable, and every task
    we enqueue this way has a periodic sweep that finds its work in the database. With Redis down
    the send is logged and skipped (a delay, not a loss); the sweep runs it when Redis is back.
    """
    import logging

    from django.db import transaction

    def send() -> None:
        try:
            task.apply_async(args=args, kwargs=kwargs)
        except Exception:  # noqa: BLE001 - broker down: the periodic sweep picks the work up
            logging.getLogger(__name__).warning(
                "could not enqueue %s; its periodic sweep will pick the work up", task.name
            )

    transaction.on_commit(send, robust=True)
