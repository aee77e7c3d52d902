import logging

import pytest
from celery import Celery
from django.db import transaction

from config.celery import enqueue_on_commit
from freelancers.models import ServiceCategory


@pytest.mark.django_db(transaction=True)
def test_enqueue_on_commit_with_the_broker_down_keeps_the_commit_and_logs(caplog):
    broken = Celery("broken", broker="redis://127.0.0.1:1/0")
    broken.conf.broker_connection_timeout = 1
    broken.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0}

    @broken.task(name="tests.never_delivered")
    def never_delivered(pk):
        raise AssertionError("must not run")

    with caplog.at_level(logging.WARNING, logger="config.celery"):
        with transaction.atomic():
            ServiceCategory.objects.create(slug="broker-down", name="Broker down", is_it=True)
            enqueue_on_commit(never_delivered, 1)
    assert ServiceCategory.objects.filter(slug="broker-down").exists()
    assert "could not enqueue tests.never_delivered" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_enqueue_on_commit_sends_nothing_when_the_transaction_rolls_back():
    sent = []
    app = Celery("recording", broker="memory://")

    @app.task(name="tests.recorded")
    def recorded(pk):
        sent.append(pk)

    app.conf.task_always_eager = True
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            enqueue_on_commit(recorded, 7)
            raise RuntimeError("roll back")
    with transaction.atomic():
        enqueue_on_commit(recorded, 8)
    assert sent == [8]


def test_the_redis_result_backend_gives_up_quickly_so_an_outage_cannot_hold_a_request():
    """Celery's Redis result backend retries 20 times a second apart by default: a webhook that
    enqueues a task while Redis is down would answer only after 20 s."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import django, json; django.setup();"
        "from config.celery import app;"
        "print(json.dumps(app.backend.retry_policy))"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    policy = json.loads(out.stdout.strip().splitlines()[-1])
    assert policy["max_retries"] <= 2, out.stderr
    assert policy["interval_max"] <= 1


def _memory_app(queue: str) -> tuple[Celery, object]:
    """A Celery app on kombu's in-memory broker: published messages stay in ``queue``."""
    app = Celery("debounced", broker="memory://")
    app.conf.task_default_queue = queue
    app.conf.task_always_eager = False

    @app.task(name=f"tests.{queue}")
    def sweep():
        raise AssertionError("only published, never run here")

    return app, sweep


def _queued(app: Celery, queue: str) -> list:
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        messages = []
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            messages.append(message)
        return messages


@pytest.mark.django_db(transaction=True)
def test_debounced_enqueue_publishes_one_delayed_run_for_a_burst_of_commits(monkeypatch):
    from config import celery as celery_module

    app, sweep = _memory_app("debounce-burst")
    clock = [1_000_000.0]
    monkeypatch.setattr("time.time", lambda: clock[0])
    monkeypatch.setattr(celery_module, "_debounce_due", {})
    for _ in range(5):  # a burst within the window: one message, due after the window
        with transaction.atomic():
            celery_module.enqueue_debounced_on_commit(sweep, window=2.0)
        clock[0] += 0.3
    with pytest.raises(RuntimeError):  # a rollback publishes nothing
        with transaction.atomic():
            celery_module.enqueue_debounced_on_commit(sweep, window=2.0)
            raise RuntimeError("roll back")
    (first,) = _queued(app, "debounce-burst")
    assert first.headers["task"] == "tests.debounce-burst"
    assert first.headers["eta"] is not None  # countdown: runs after the burst's commits
    clock[0] += 0.6  # 2.1 s after the first publish: the run is due, the next commit sends again
    with transaction.atomic():
        celery_module.enqueue_debounced_on_commit(sweep, window=2.0)
    assert len(_queued(app, "debounce-burst")) == 1


@pytest.mark.django_db(transaction=True)
def test_debounced_enqueue_does_not_remember_a_failed_publish(caplog):
    from config import celery as celery_module

    broken = Celery("broken-debounce", broker="redis://127.0.0.1:1/0")
    broken.conf.broker_connection_timeout = 1
    broken.conf.task_publish_retry_policy = {"max_retries": 0}

    @broken.task(name="tests.debounce_broken")
    def never_delivered():
        raise AssertionError("must not run")

    with caplog.at_level(logging.WARNING, logger="config.celery"):
        for _ in range(2):
            with transaction.atomic():
                celery_module.enqueue_debounced_on_commit(never_delivered, window=60.0)
    # Both commits tried to publish (the first failure was not taken for a scheduled run).
    assert caplog.text.count("could not enqueue tests.debounce_broken") == 2
    assert "tests.debounce_broken" not in celery_module._debounce_due
