"""POST /api/v1/webhooks/stripe/ with Stripe's real fixtures, signed by the stripe package.

Where a test needs a state the fixtures do not hold (a paid session, a refunded charge, a paid
payout), it derives it from the fixture in tests/payments/stripe_fixtures.py and says so there.
"""

import datetime
import json
import time

import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory

from payments.models import Invoice, Receipt, StripeEvent, StripePayout
from payments.selectors import counted_receipts
from payments.services.stripe_events import stripe_events_retry_pending
from tests.factories import InvoiceFactory, ReceiptFactory, StaffFactory, StripeAccountFactory
from tests.payments.stripe_fixtures import (
    WEBHOOK_SECRET,
    envelope,
    fixture,
    paid_checkout_session,
    post_event,
    refunded_charge,
    sign,
)

pytestmark = pytest.mark.django_db
PI = "pi_1PgafyB7WZ01zgkWSjxsAJo3"  # the payment intent of checkout_session.fixtures3.json


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_LIVEMODE = False


def completed(invoice, event_id="evt_completed_1", **kwargs):
    return envelope(
        "checkout.session.completed",
        paid_checkout_session(invoice, payment_intent=PI),
        event_id=event_id,
        **kwargs,
    )


def test_signed_checkout_completed_marks_invoice_paid_and_records_uncounted_stripe_receipt(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    response = post_event(client, completed(invoice))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "applied"
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.payment_intent_id == PI
    receipt = invoice.receipt
    assert (receipt.source, receipt.reference, receipt.bank) == ("stripe", PI, None)
    assert receipt.amount == invoice.amount and receipt.usd_amount == invoice.amount
    assert receipt.freelancer == invoice.freelancer
    assert not counted_receipts().filter(pk=receipt.pk).exists()
    assert invoice.in_transit


def test_one_changed_byte_fails_the_signature_and_nothing_is_stored(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    payload = json.dumps(completed(invoice))
    header = sign(payload)
    tampered = payload.replace(str(invoice.amount_minor), str(invoice.amount_minor + 1), 1)
    assert tampered != payload
    response = post_event(client, tampered, header=header)
    assert response.status_code == 400
    assert response.json()["error"] == "signature"
    assert not StripeEvent.objects.exists() and not Receipt.objects.exists()


def test_signature_with_another_secret_is_rejected(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    payload = json.dumps(completed(invoice))
    response = post_event(client, payload, header=sign(payload, secret="whsec_other"))
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()


@pytest.mark.parametrize("offset", [-301, 301, 86400 * 365])
def test_stale_or_future_timestamp_is_rejected(client, offset):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    response = post_event(client, completed(invoice), timestamp=int(time.time()) + offset)
    assert response.status_code == 400
    assert not StripeEvent.objects.exists()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN


@pytest.mark.parametrize("offset", [-290, 290])
def test_timestamp_within_300_seconds_either_way_is_accepted(client, offset):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    response = post_event(client, completed(invoice), timestamp=int(time.time()) + offset)
    assert response.status_code == 200


def test_missing_header_or_unconfigured_secret_is_rejected(client, settings):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    assert post_event(client, completed(invoice), header="").status_code == 400
    assert post_event(client, completed(invoice), header="t=abc,v1=zz").status_code == 400
    payload = json.dumps(completed(invoice))
    header = sign(payload)
    settings.STRIPE_WEBHOOK_SECRET = ""
    assert post_event(client, payload, header=header).status_code == 400
    assert not StripeEvent.objects.exists()


def test_signed_body_that_is_not_an_event_gets_400_naming_the_field(client):
    response = post_event(client, {"id": "evt_x", "object": "event", "type": "x"})
    assert response.status_code == 400
    assert set(response.json()["fields"]) >= {"created", "livemode", "data.object"}
    response = post_event(client, "[1, 2]")
    assert response.status_code == 400 and "body" in response.json()["fields"]


def test_replayed_event_is_stored_once_and_counted_once(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    event = completed(invoice)
    first = post_event(client, event)
    second = post_event(client, event)
    assert first.status_code == second.status_code == 200
    assert second.json()["duplicate"] is True
    assert StripeEvent.objects.count() == 1
    assert Receipt.objects.filter(source="stripe").count() == 1


def test_payment_intent_succeeded_after_session_completed_adds_nothing(client):
    """The dj-stripe payment_intent fixture (succeeded, 2000 usd) with metadata derived here to
    point at the invoice; its id replaced by the session's payment intent."""
    invoice = InvoiceFactory(status=Invoice.Status.OPEN, amount="20.00")
    post_event(client, completed(invoice))
    intent = fixture("third_party_djstripe/payment_intent_succeeded.djstripe.json")
    intent.update({"id": PI, "metadata": {"invoice_id": str(invoice.pk)}})
    response = post_event(client, envelope("payment_intent.succeeded", intent, event_id="evt_pi"))
    assert response.json()["status"] == "applied"
    assert Receipt.objects.filter(source="stripe").count() == 1


def test_payment_intent_succeeded_alone_uses_expanded_balance_transaction_for_usd(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN, amount="20.00", currency="EUR")
    intent = fixture("third_party_djstripe/payment_intent_succeeded.djstripe.json")
    intent.update({"currency": "eur", "metadata": {"invoice_id": str(invoice.pk)}})
    balance = fixture("balance_transaction.fixtures3.json")  # derived: amount 2170 usd
    balance["amount"] = 2170
    intent["charges"]["data"][0]["balance_transaction"] = balance
    post_event(client, envelope("payment_intent.succeeded", intent, event_id="evt_pi_eur"))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert str(invoice.receipt.usd_amount) == "21.70"
    assert invoice.receipt.currency == "EUR"


def test_refund_before_payment_event_gives_the_same_result_as_in_order(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    refund = envelope(
        "charge.refunded",
        refunded_charge(invoice, payment_intent=PI, amount_refunded=invoice.amount_minor),
        event_id="evt_refund",
    )
    # The charge carries no invoice id: the refund waits for the payment it refers to.
    refund["data"]["object"]["metadata"] = {}
    assert post_event(client, refund).json()["status"] == "deferred"
    post_event(client, completed(invoice))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.REFUNDED
    assert invoice.amount_refunded == invoice.amount
    assert invoice.receipt.reversed_on is not None
    assert StripeEvent.objects.get(event_id="evt_refund").status == StripeEvent.Status.APPLIED
    assert Receipt.objects.filter(source="stripe").count() == 1


def test_refund_of_a_charge_naming_the_invoice_marks_paid_then_refunded(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    charge = refunded_charge(invoice, payment_intent=PI, amount_refunded=50_000)
    charge["metadata"] = {"invoice_id": str(invoice.pk)}
    post_event(client, envelope("charge.refunded", charge, event_id="evt_refund_first"))
    post_event(client, completed(invoice))  # arrives afterwards: nothing more to do
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PARTIALLY_REFUNDED
    assert str(invoice.amount_refunded) == "500.00"
    assert invoice.receipt.reversed_on is None
    assert Receipt.objects.filter(source="stripe").count() == 1


def test_partial_refunds_use_amount_refunded_not_the_sum_of_events(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    post_event(client, completed(invoice))
    for event_id, refunded in [("evt_r1", 30_000), ("evt_r2", 50_000), ("evt_r1_late", 30_000)]:
        charge = refunded_charge(invoice, payment_intent=PI, amount_refunded=refunded)
        post_event(client, envelope("charge.refunded", charge, event_id=event_id))
    invoice.refresh_from_db()
    assert str(invoice.amount_refunded) == "500.00"  # not 300 + 500 + 300
    assert invoice.status == Invoice.Status.PARTIALLY_REFUNDED
    assert invoice.receipt.reversed_on is None


def test_refunded_after_paid_reverses_the_receipt(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    post_event(client, completed(invoice))
    charge = refunded_charge(invoice, payment_intent=PI, amount_refunded=invoice.amount_minor)
    post_event(client, envelope("charge.refunded", charge, event_id="evt_full"))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.REFUNDED
    assert invoice.receipt.reversed_on is not None
    assert invoice.receipt.reversal_reason == "Stripe refund"


def test_test_mode_event_on_live_deployment_is_stored_but_never_counted(client, settings):
    settings.STRIPE_LIVEMODE = True
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    response = post_event(client, completed(invoice, livemode=False))
    assert response.status_code == 200
    event = StripeEvent.objects.get()
    assert event.status == StripeEvent.Status.IGNORED and event.livemode is False
    assert not Receipt.objects.exists()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN


def test_unknown_event_type_is_stored_and_acknowledged(client):
    event = fixture("event_envelope.fixtures3.json")  # plan.created, as stored
    event["created"] = int(time.time())
    response = post_event(client, event)
    assert response.status_code == 200
    stored = StripeEvent.objects.get(event_id=event["id"])
    assert stored.status == StripeEvent.Status.IGNORED
    assert stored.payload["data"]["object"]["id"] == "price_1PgafmB7WZ01zgkW6dKueIc5"


def test_unpaid_session_completion_changes_nothing(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    session = fixture("checkout_session.fixtures3.json")  # payment_status "unpaid", as stored
    session["metadata"] = {"invoice_id": str(invoice.pk)}
    post_event(client, envelope("checkout.session.completed", session, event_id="evt_unpaid"))
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN and not Receipt.objects.exists()


def test_amount_mismatch_fails_the_event_and_admin_replay_applies_it_after_the_fix(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN, amount="1400.00")
    event = completed(invoice)
    event["data"]["object"]["amount_total"] = 150_000
    response = post_event(client, event)
    assert response.status_code == 200
    stored = StripeEvent.objects.get()
    assert stored.status == StripeEvent.Status.FAILED
    assert "150000" in stored.error
    assert not Receipt.objects.exists()
    # A person corrects the invoice, then replays the stored event from the admin.
    Invoice.objects.filter(pk=invoice.pk).update(amount="1500.00")
    admin = StaffFactory(is_superuser=True)
    request = RequestFactory().post("/")
    request.user = admin
    request._messages = type("M", (), {"add": lambda *a, **k: None})()
    model_admin = site._registry[StripeEvent]
    model_admin.replay(request, StripeEvent.objects.all())
    stored.refresh_from_db()
    assert stored.status == StripeEvent.Status.APPLIED and stored.attempts == 2
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID


def test_sweep_applies_an_event_whose_request_died_after_storing(client):
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    event = completed(invoice)
    StripeEvent.objects.create(
        event_id=event["id"],
        type=event["type"],
        livemode=False,
        payment_intent_id=PI,
        created=datetime.datetime.now(tz=datetime.UTC),
        payload=event,
    )
    StripeEvent.objects.update(received_at=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC))
    assert stripe_events_retry_pending() == 1
    assert stripe_events_retry_pending() == 0
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID


def test_payout_paid_is_recorded_and_matched_to_the_bank_remittance(client):
    """payout.fixtures3.json is "in_transit"; derived to "paid" (dj-stripe's payout fixture shows
    the paid state but carries a string amount, so it is not used for the amount)."""
    connected = StripeAccountFactory()
    invoice = InvoiceFactory(status=Invoice.Status.OPEN, freelancer=connected.freelancer)
    post_event(client, completed(invoice))
    arrival = datetime.datetime(2024, 3, 14, tzinfo=datetime.UTC)
    remittance = ReceiptFactory(
        account=connected.payout_account, amount="1456.20", value_date=datetime.date(2024, 3, 15)
    )
    payout = fixture("payout.fixtures3.json")
    payout.update({"status": "paid", "amount": 145_620, "arrival_date": int(arrival.timestamp())})
    payout["created"] = int(time.time()) + 60
    event = envelope("payout.paid", payout, event_id="evt_payout", account=connected.account_id)
    response = post_event(client, event)
    assert response.json()["status"] == "applied", response.json()
    record = StripePayout.objects.get()
    assert record.bank_receipt == remittance and record.freelancer == connected.freelancer
    invoice.refresh_from_db()
    assert invoice.payout == record and not invoice.in_transit
    assert post_event(client, event).json()["duplicate"] is True
    assert StripePayout.objects.count() == 1


def test_the_sdk_pitfalls_are_closed():
    """stripe-python skips the time check without a tolerance and accepts future timestamps; the
    portal's check does neither."""
    import stripe

    from payments.services.stripe_events import stripe_signature_verify

    payload = '{"id": "evt_pitfall"}'
    stale = sign(payload, timestamp=int(time.time()) - 3600)
    future = sign(payload, timestamp=int(time.time()) + 3600)
    assert stripe.WebhookSignature.verify_header(payload, stale, WEBHOOK_SECRET) is True
    assert stripe.WebhookSignature.verify_header(payload, future, WEBHOOK_SECRET, 300) is True
    for header in (stale, future):
        with pytest.raises(stripe.SignatureVerificationError):
            stripe_signature_verify(payload=payload.encode(), header=header, secret=WEBHOOK_SECRET)


def test_receipts_changed_is_sent_for_the_payment_and_the_full_refund_only(client):
    from payments.signals import receipts_changed

    sent: list[set] = []

    def receiver(sender, months, **kwargs):
        sent.append(months)

    receipts_changed.connect(receiver)
    try:
        invoice = InvoiceFactory(status=Invoice.Status.OPEN)
        post_event(client, completed(invoice))
        post_event(client, completed(invoice, event_id="evt_completed_again"))
        partial = refunded_charge(invoice, payment_intent=PI, amount_refunded=100)
        post_event(client, envelope("charge.refunded", partial, event_id="evt_part"))
        full = refunded_charge(invoice, payment_intent=PI, amount_refunded=invoice.amount_minor)
        post_event(client, envelope("charge.refunded", full, event_id="evt_all"))
    finally:
        receipts_changed.disconnect(receiver)
    from django.utils import timezone

    month = timezone.localdate().replace(day=1)
    assert sent == [{month}, {month}]
