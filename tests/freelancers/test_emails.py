import time

import pytest
from django.core import mail
from django.db import transaction

from freelancers.models import OutboundEmail
from freelancers.services.emails import email_enqueue, email_send
from freelancers.tasks import send_pending_emails


@pytest.mark.django_db
def test_stored_email_is_sent_once_even_if_the_task_runs_twice():
    email = email_enqueue(
        to="a@example.pk", subject="Hello", body="https://x/token", sensitive=True
    )
    assert email_send(email_id=email.pk) is True
    assert email_send(email_id=email.pk) is False
    assert [m.subject for m in mail.outbox].count("Hello") == 1
    email.refresh_from_db()
    assert email.sent_at is not None and email.body.startswith("(erased")


@pytest.mark.django_db
def test_sweep_sends_emails_whose_task_never_ran():
    email = OutboundEmail.objects.create(to="b@example.pk", subject="Lost", body="x")
    OutboundEmail.objects.filter(pk=email.pk).update(
        created_at=email.created_at - __import__("datetime").timedelta(minutes=10)
    )
    assert send_pending_emails() == 1
    assert send_pending_emails() == 0
    assert [m.subject for m in mail.outbox] == ["Lost"]


@pytest.mark.django_db
def test_rolled_back_transaction_stores_and_sends_nothing(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            email_enqueue(to="c@example.pk", subject="Never", body="x")
            raise RuntimeError
    assert callbacks == [] and not OutboundEmail.objects.exists() and mail.outbox == []


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_real_worker_sends_the_email_after_commit(celery_worker_session):
    with transaction.atomic():
        email = email_enqueue(to="d@example.pk", subject="Via Redis", body="x")
    for _ in range(100):
        email.refresh_from_db()
        if email.sent_at:
            break
        time.sleep(0.1)
    assert email.sent_at is not None
