"""The Celery app. Tasks live in each app's tasks.py and are autodiscovered."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _publish(task, **options) -> bool:
    """Send ``task`` to the broker now; with the broker down, log and return False (a delay, not
    a loss: every task sent this way has a periodic sweep that finds its work in the database)."""
    import logging

    try:
        task.apply_async(**options)
    except Exception:  # noqa: BLE001 - broker down: the periodic sweep picks the work up
        logging.getLogger(__name__).warning(
            "could not enqueue %s; its periodic sweep will pick the work up", task.name
        )
        return False
    return True


def enqueue_on_commit(task, *args, **kwargs) -> None:
    """Send ``task`` to the broker once the current transaction commits.

    Never fails the caller: the change itself is already committed and durable, and every task
    we enqueue this way has a periodic sweep that finds its work in the database. With Redis down
    the send is logged and skipped (a delay, not a loss); the sweep runs it when Redis is back.
    """
    from django.db import transaction

    transaction.on_commit(lambda: _publish(task, args=args, kwargs=kwargs), robust=True)


# task name -> wall-clock time (time.time()) before which an already published run of the task
# is still due to start. Per process; see enqueue_debounced_on_commit.
_debounce_due: dict[str, float] = {}


def enqueue_debounced_on_commit(task, *, window: float) -> None:
    """Like ``enqueue_on_commit`` for a task without arguments that processes whatever work the
    database holds (a sweep), sent at most once per ``window`` seconds per process.

    After the transaction commits, the task is published with ``countdown=window`` unless a run
    published from this process is still due to start later than now (with a margin): that run
    will start after this commit and see its work. Many commits in a burst therefore cost one
    broker message instead of one each. A failed publish is not remembered, so the next commit
    tries again, and the task's periodic sweep covers the rest. With ``task_always_eager`` (tests,
    the demo) every commit runs the task at once, as ``enqueue_on_commit`` does.
    """
    import time

    from django.db import transaction

    if task.app.conf.task_always_eager:
        enqueue_on_commit(task)
        return

    def send() -> None:
        now = time.time()
        if _debounce_due.get(task.name, 0.0) - DEBOUNCE_MARGIN > now:
            return
        if _publish(task, countdown=window):
            _debounce_due[task.name] = now + window

    transaction.on_commit(send, robust=True)


# Seconds of slack between "a run is due later" and now, for clock steps between processes.
DEBOUNCE_MARGIN = 0.25
