"""Stripe API calls at the HTTP boundary: the SDK's HTTP client is replaced by a recording fake
that answers with Stripe-shaped JSON (the real checkout_session fixture), so the request the SDK
would send (path, form parameters, headers) is asserted without any network."""

import json
import time
from urllib.parse import parse_qsl

import pytest
import stripe

from payments.models import Invoice
from payments.services import invoices as invoice_services
from payments.services.invoices import (
    InvoiceError,
    StripeNotConfigured,
    invoice_send,
    invoice_void,
)
from tests.factories import InvoiceFactory, StripeAccountFactory
from tests.payments.stripe_fixtures import fixture

pytestmark = pytest.mark.django_db


class RecordingHTTPClient(stripe.HTTPClient):
    """Records every request; answers from a queue of (status, body) pairs."""

    name = "recording-fake"

    def __init__(self, responses):
        super().__init__()
        self.responses = list(responses)
        self.requests: list[dict] = []

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        self.requests.append(
            {
                "method": method,
                "url": url,
                "headers": dict(headers or {}),
                "params": dict(parse_qsl(post_data or "")),
            }
        )
        status, body = self.responses.pop(0)
        return json.dumps(body), status, {}

    def close(self):
        pass


def session_json(**changes) -> dict:
    session = fixture("checkout_session.fixtures3.json")
    session["expires_at"] = int(time.time()) + 24 * 3600
    session.update(changes)
    return session


@pytest.fixture
def fake_stripe(settings, monkeypatch):
    settings.STRIPE_API_KEY = "sk_test_fake"

    def install(*responses):
        fake = RecordingHTTPClient(responses)
        monkeypatch.setattr(invoice_services, "_http_client", lambda: fake)
        return fake

    return install


def test_send_creates_one_checkout_session_with_invoice_metadata_and_idempotency_key(fake_stripe):
    invoice = InvoiceFactory(amount="1234.50", currency="EUR")
    fake = fake_stripe((200, session_json()))
    invoice = invoice_send(invoice=invoice)
    [request] = fake.requests
    assert request["method"] == "post"
    assert request["url"] == "https://api.stripe.com/v1/checkout/sessions"
    params = request["params"]
    assert params["metadata[invoice_id]"] == str(invoice.pk)
    assert params["payment_intent_data[metadata][invoice_id]"] == str(invoice.pk)
    assert params["client_reference_id"] == str(invoice.pk)
    assert params["mode"] == "payment"
    assert params["line_items[0][price_data][currency]"] == "eur"
    assert params["line_items[0][price_data][unit_amount]"] == "123450"
    assert params["success_url"].endswith(f"/pay/{invoice.public_token}/?paid=1")
    assert request["headers"]["Idempotency-Key"] == f"pseb-invoice-{invoice.pk}-checkout-0"
    assert request["headers"]["Authorization"] == "Bearer sk_test_fake"
    assert "Stripe-Account" not in request["headers"]
    assert invoice.status == Invoice.Status.OPEN
    assert invoice.checkout_session_id == session_json()["id"]
    assert invoice.checkout_url == session_json()["url"]


def test_retry_after_a_lost_response_sends_the_same_idempotency_key(fake_stripe):
    invoice = InvoiceFactory()
    fake = fake_stripe((500, {"error": {"type": "api_error", "message": "boom"}}))
    with pytest.raises(stripe.APIError):
        invoice_send(invoice=invoice)
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.DRAFT
    fake2 = fake_stripe((200, session_json()))
    invoice_send(invoice=invoice)
    assert (
        fake.requests[0]["headers"]["Idempotency-Key"]
        == fake2.requests[0]["headers"]["Idempotency-Key"]
    )


def test_sending_an_open_invoice_with_a_live_session_makes_no_second_request(fake_stripe):
    invoice = InvoiceFactory()
    fake = fake_stripe((200, session_json()))
    invoice_send(invoice=invoice)
    invoice_send(invoice=invoice)
    assert len(fake.requests) == 1


def test_an_expired_session_is_replaced_under_a_new_key(fake_stripe):
    invoice = InvoiceFactory()
    fake = fake_stripe(
        (200, session_json(expires_at=int(time.time()) - 10)),
        (200, session_json(id="cs_test_second", expires_at=int(time.time()) + 3600)),
    )
    invoice_send(invoice=invoice)
    invoice = invoice_send(invoice=invoice)
    keys = [r["headers"]["Idempotency-Key"] for r in fake.requests]
    prefix = f"pseb-invoice-{invoice.pk}-checkout-"
    assert keys == [prefix + "0", prefix + "1"]
    assert invoice.checkout_session_id == "cs_test_second"


def test_connected_freelancer_gets_the_session_on_their_stripe_account(fake_stripe):
    connected = StripeAccountFactory()
    invoice = InvoiceFactory(freelancer=connected.freelancer)
    fake = fake_stripe((200, session_json()))
    invoice_send(invoice=invoice)
    assert fake.requests[0]["headers"]["Stripe-Account"] == connected.account_id


def test_void_expires_the_session_at_stripe(fake_stripe):
    invoice = InvoiceFactory()
    fake = fake_stripe((200, session_json()), (200, session_json(status="expired")))
    invoice_send(invoice=invoice)
    invoice = invoice_void(invoice=invoice)
    assert fake.requests[1]["url"].endswith(f"/v1/checkout/sessions/{session_json()['id']}/expire")
    assert invoice.status == Invoice.Status.VOID


def test_void_refused_by_stripe_keeps_the_invoice_open(fake_stripe):
    invoice = InvoiceFactory()
    error = {"error": {"type": "invalid_request_error", "message": "Session is complete"}}
    fake_stripe((200, session_json()), (400, error))
    invoice_send(invoice=invoice)
    with pytest.raises(InvoiceError):
        invoice_void(invoice=invoice)
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.OPEN


def test_without_api_key_sending_explains_stripe_is_not_configured(settings):
    settings.STRIPE_API_KEY = ""
    invoice = InvoiceFactory()
    with pytest.raises(StripeNotConfigured):
        invoice_send(invoice=invoice)
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.DRAFT


def test_paid_or_void_invoices_cannot_be_sent(fake_stripe):
    fake = fake_stripe()
    for status in [Invoice.Status.PAID, Invoice.Status.VOID, Invoice.Status.REFUNDED]:
        with pytest.raises(InvoiceError):
            invoice_send(invoice=InvoiceFactory(status=status))
    assert fake.requests == []


def test_api_send_opens_the_invoice_and_returns_the_client_link(fake_stripe, client):
    invoice = InvoiceFactory()
    fake = fake_stripe((200, session_json()))
    client.force_login(invoice.freelancer.user)
    response = client.post(f"/api/v1/invoices/{invoice.pk}/send/")
    assert response.status_code == 200
    assert response.json()["status"] == "open"
    assert response.json()["pay_url"].endswith(f"/pay/{invoice.public_token}/")
    assert len(fake.requests) == 1


def test_client_stripe_button_redirects_to_the_checkout_session(fake_stripe, client):
    invoice = InvoiceFactory()
    fake = fake_stripe((200, session_json()))
    invoice_send(invoice=invoice)
    response = client.post(f"/pay/{invoice.public_token}/checkout/")
    assert response.status_code == 302
    assert response["Location"] == session_json()["url"]
    assert len(fake.requests) == 1  # the live session is reused, no second call


def test_stripe_refusal_on_the_client_button_is_a_friendly_message(fake_stripe, client):
    invoice = InvoiceFactory()
    fake_stripe(
        (200, session_json(expires_at=int(time.time()) - 10)),
        (402, {"error": {"type": "card_error", "message": "nope"}}),
    )
    invoice_send(invoice=invoice)
    response = client.post(f"/pay/{invoice.public_token}/checkout/", follow=True)
    assert response.status_code == 200
    assert "unavailable right now" in response.content.decode()
