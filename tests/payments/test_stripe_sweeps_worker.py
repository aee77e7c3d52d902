"""The beat sweeps run on a real Celery worker over Redis (skipped without REDIS_URL)."""

import datetime

import pytest

from payments.models import Invoice, StripeEvent
from payments.tasks.stripe import stripe_events_sweep
from tests.factories import InvoiceFactory
from tests.payments.stripe_fixtures import envelope, paid_checkout_session


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_worker_sweep_applies_a_stored_event_whose_request_died(celery_worker_session):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    session = paid_checkout_session(invoice, payment_intent="pi_worker_sweep_1")
    event = envelope("checkout.session.completed", session, event_id="evt_worker_sweep_1")
    stored = StripeEvent.objects.create(
        event_id=event["id"],
        type=event["type"],
        livemode=False,
        payment_intent_id="pi_worker_sweep_1",
        created=datetime.datetime.now(tz=datetime.UTC),
        payload=event,
    )
    StripeEvent.objects.filter(pk=stored.pk).update(
        received_at=datetime.datetime.now(tz=datetime.UTC) - datetime.timedelta(hours=1)
    )
    assert stripe_events_sweep.delay().get(timeout=60) == 1
    assert stripe_events_sweep.delay().get(timeout=60) == 0  # safe to run twice
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID
