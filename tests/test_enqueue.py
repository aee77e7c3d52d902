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
