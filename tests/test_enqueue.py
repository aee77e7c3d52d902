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
