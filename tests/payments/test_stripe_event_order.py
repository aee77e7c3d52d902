"""Events in any order, any number of times: the same final state (every permutation)."""

import itertools

import pytest

from payments.models import Invoice, Receipt, StripeEvent
from tests.factories import InvoiceFactory
from tests.payments.stripe_fixtures import (
    WEBHOOK_SECRET,
    envelope,
    fixture,
    paid_checkout_session,
    post_event,
    refunded_charge,
)

PI = "pi_order_test_0001"
EVENTS = ["completed", "intent", "refund_30", "refund_50"]


def build(name: str, invoice) -> dict:
    if name == "completed":
        obj = paid_checkout_session(invoice, payment_intent=PI)
        return envelope("checkout.session.completed", obj, event_id="evt_o_completed")
    if name == "intent":
        # dj-stripe's succeeded payment intent, derived: this invoice's id, amount and intent id.
        intent = fixture("third_party_djstripe/payment_intent_succeeded.djstripe.json")
        intent.update(
            id=PI,
            amount=invoice.amount_minor,
            amount_received=invoice.amount_minor,
            metadata={"invoice_id": str(invoice.pk)},
        )
        return envelope("payment_intent.succeeded", intent, event_id="evt_o_intent")
    refunded = {"refund_30": 30_000, "refund_50": 50_000}[name]
    charge = refunded_charge(invoice, payment_intent=PI, amount_refunded=refunded)
    return envelope("charge.refunded", charge, event_id=f"evt_o_{name}")


@pytest.mark.django_db
@pytest.mark.parametrize("order", list(itertools.permutations(EVENTS)))
def test_every_order_and_a_redelivery_end_in_the_same_state(client, settings, order):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_LIVEMODE = False
    invoice = InvoiceFactory(status=Invoice.Status.OPEN, amount="1500.00")
    for name in [*order, order[0]]:  # the first event is delivered twice
        assert post_event(client, build(name, invoice)).status_code == 200
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PARTIALLY_REFUNDED
    assert str(invoice.amount_refunded) == "500.00"
    assert invoice.payment_intent_id == PI
    assert Receipt.objects.filter(source="stripe").count() == 1
    assert invoice.receipt.reversed_on is None
    assert StripeEvent.objects.count() == 4
    assert set(StripeEvent.objects.values_list("status", flat=True)) == {"applied"}
