"""receipt_record / receipt_reverse as other callers (Stripe) use them, failures in the webhook,
and the bounded delivery log."""

import datetime
from decimal import Decimal

import pytest
from django.db import OperationalError
from django.utils import timezone

from payments.models import Receipt, WebhookDelivery
from payments.services import bank_webhooks
from payments.services.bank_webhooks import webhook_deliveries_prune
from payments.services.receipts import receipt_record, receipt_reverse
from payments.signals import receipts_changed
from payments.tasks.banks import bank_deliveries_prune, banks_link_sweep
from tests.factories import ApprovedFreelancerFactory, purpose_code
from tests.payments.bank_helpers import bank, event, post, remittance  # noqa: F401

pytestmark = pytest.mark.django_db


def _stripe(reference: str, **kwargs):
    return receipt_record(
        source=Receipt.Source.STRIPE,
        bank=None,
        reference=reference,
        amount=Decimal("99.00"),
        currency="USD",
        usd_amount=Decimal("99.00"),
        pkr_rate=Decimal("280"),
        value_date=datetime.date(2024, 5, 2),
        purpose_code=purpose_code(),
        **kwargs,
    )


def test_stripe_receipt_without_iban_links_to_the_given_freelancer_once():
    freelancer = ApprovedFreelancerFactory()
    months = []

    def remember(sender, **kwargs):
        months.append(kwargs["months"])

    receipts_changed.connect(remember, dispatch_uid="test-stripe-months")
    try:
        receipt, created = _stripe("pi_123", freelancer=freelancer)
        again, created_again = _stripe("pi_123", freelancer=freelancer)
    finally:
        receipts_changed.disconnect(dispatch_uid="test-stripe-months")
    assert created and not created_again and again.pk == receipt.pk
    assert receipt.freelancer == freelancer and receipt.iban == "" and receipt.account is None
    assert months == [{datetime.date(2024, 5, 1)}]  # sent once: the repeat changed nothing


def test_stripe_reversal_before_and_after_the_receipt():
    receipt_reverse(
        source="stripe", bank=None, reference="pi_early", reversed_on=datetime.date(2024, 5, 3)
    )
    receipt, _ = _stripe("pi_early")
    assert receipt.reversed_on == datetime.date(2024, 5, 3)
    receipt, _ = _stripe("pi_late")
    _, created = receipt_reverse(
        source="stripe",
        bank=None,
        reference="pi_late",
        reversed_on=datetime.date(2024, 5, 4),
        reason="refund",
    )
    _, created_again = receipt_reverse(
        source="stripe", bank=None, reference="pi_late", reversed_on=datetime.date(2024, 5, 9)
    )
    receipt.refresh_from_db()
    assert created and not created_again
    assert receipt.reversed_on == datetime.date(2024, 5, 4) and receipt.reversal_reason == "refund"


def test_unexpected_failure_is_recorded_and_nothing_else(client, bank, monkeypatch):  # noqa: F811
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(bank_webhooks, "_apply", explode)
    monkeypatch.setattr(bank_webhooks, "remittance_insert_new", explode)  # PostgreSQL's path
    client.raise_request_exception = False
    response = post(client, "HBL", event("remittance.credited", remittance()))
    assert response.status_code == 500
    delivery = WebhookDelivery.objects.get()
    assert delivery.outcome == "error" and "boom" in delivery.detail and delivery.body
    assert Receipt.objects.count() == 0


def test_database_still_locked_after_the_timeout_answers_503_not_500(client, bank, monkeypatch):  # noqa: F811
    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(bank_webhooks, "_apply", locked)
    monkeypatch.setattr(bank_webhooks, "remittance_insert_new", locked)  # PostgreSQL's path
    response = post(client, "HBL", event("remittance.credited", remittance()))
    assert response.status_code == 503 and response.json()["error"] == "busy"
    assert WebhookDelivery.objects.get().outcome == "busy"


def test_prune_deletes_only_old_rejected_deliveries(client, bank):  # noqa: F811
    post(client, "HBL", event("remittance.credited", remittance()))
    post(client, "HBL", event("remittance.credited", remittance()), secret="x" * 20)
    post(client, "HBL", event("remittance.credited", remittance(amount="x")))
    WebhookDelivery.objects.update(received_at=timezone.now() - datetime.timedelta(days=31))
    post(client, "HBL", event("remittance.credited", remittance()), secret="x" * 20)  # recent
    assert webhook_deliveries_prune(days=30) == 2
    assert sorted(WebhookDelivery.objects.values_list("outcome", flat=True)) == [
        "accepted",
        "signature",
    ]
    assert bank_deliveries_prune() == 0  # the task: idempotent


def test_rejected_bodies_are_truncated_in_the_log(client, bank):  # noqa: F811
    raw = b'{"id": "' + b"x" * 10_000 + b'"}'
    assert post(client, "HBL", None, raw=raw).status_code == 400
    delivery = WebhookDelivery.objects.get()
    assert len(delivery.body) == WebhookDelivery.REJECTED_BODY_LIMIT and delivery.body_truncated


def test_link_sweep_task_runs(client, bank):  # noqa: F811
    assert banks_link_sweep() == 0


def test_sweep_applies_a_stripe_reversal_the_receipt_does_not_show():
    from payments.services.receipts import receipts_link_sweep

    receipt, _ = _stripe("pi_swept")
    receipt_reverse(
        source="stripe", bank=None, reference="pi_swept", reversed_on=datetime.date(2024, 5, 6)
    )
    Receipt.objects.update(reversed_on=None)  # as if a race had left it unapplied
    assert receipts_link_sweep() == 1
    receipt.refresh_from_db()
    assert receipt.reversed_on == datetime.date(2024, 5, 6)
