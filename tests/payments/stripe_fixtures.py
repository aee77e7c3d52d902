"""Helpers for the Stripe tests: the real fixtures in /work/shared/fixtures/stripe (provenance in
its README.txt), event envelopes built around them, and signing with the stripe package's own
``WebhookSignature.generate_signature_header``."""

import copy
import json
import time
from pathlib import Path

import stripe

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "stripe"
if not FIXTURES.is_dir():  # the worktree may live elsewhere; the fixtures stay in /work/shared
    FIXTURES = Path("/work/shared/fixtures/stripe")
WEBHOOK_SECRET = "whsec_test_portal_secret"


def fixture(name: str) -> dict:
    """A fixture file, as stored (never edited on disk)."""
    return json.loads((FIXTURES / name).read_text())


def envelope(event_type: str, obj: dict, *, event_id: str, livemode: bool = False, **extra) -> dict:
    """Build an event: Stripe's real envelope fixture (event_envelope.fixtures3.json, a
    plan.created event) with its type, id and data.object replaced. The fixtures hold no events of
    these types, so the envelope is built here, as README.txt says."""
    event = fixture("event_envelope.fixtures3.json")
    event.update(
        {"id": event_id, "type": event_type, "livemode": livemode, "created": int(time.time())}
    )
    event["data"] = {"object": copy.deepcopy(obj)}
    event.update(extra)
    return event


def sign(payload: str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """The Stripe-Signature header, computed by the stripe package itself."""
    return stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=timestamp)


def post_event(client, event: dict | str, *, header: str | None = None, timestamp=None):
    payload = event if isinstance(event, str) else json.dumps(event)
    return client.post(
        "/api/v1/webhooks/stripe/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header if header is not None else sign(payload, timestamp=timestamp),
    )


def paid_checkout_session(invoice, *, payment_intent: str) -> dict:
    """checkout_session.fixtures3.json is "open"/"unpaid"; derived here into the completed, paid
    state Stripe sends with checkout.session.completed, for this invoice."""
    session = fixture("checkout_session.fixtures3.json")
    session.update(
        {
            "status": "complete",
            "payment_status": "paid",
            "payment_intent": payment_intent,
            "amount_total": invoice.amount_minor,
            "amount_subtotal": invoice.amount_minor,
            "currency": invoice.currency.lower(),
            "metadata": {"invoice_id": str(invoice.pk)},
            "client_reference_id": str(invoice.pk),
        }
    )
    return session


def refunded_charge(invoice, *, payment_intent: str, amount_refunded: int) -> dict:
    """charge.fixtures3.json (succeeded, amount 100, not refunded) derived into the state of a
    charge.refunded event's object for this invoice's payment."""
    charge = fixture("charge.fixtures3.json")
    charge.update(
        {
            "amount": invoice.amount_minor,
            "amount_captured": invoice.amount_minor,
            "captured": True,
            "currency": invoice.currency.lower(),
            "payment_intent": payment_intent,
            "amount_refunded": amount_refunded,
            "refunded": amount_refunded == invoice.amount_minor,
        }
    )
    return charge
