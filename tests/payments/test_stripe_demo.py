"""The demo's Stripe invoices: every status, made without Stripe keys, idempotent."""

import pytest
from django.core.management import call_command

from payments.models import Invoice, Receipt, StripePayout


@pytest.mark.django_db
def test_demo_has_invoices_in_every_status_without_stripe_keys_and_runs_twice(settings, client):
    settings.STRIPE_API_KEY = ""
    call_command("load_demo", stdout=open("/dev/null", "w"))
    statuses = set(Invoice.objects.values_list("status", flat=True))
    assert statuses == {choice for choice, _ in Invoice.Status.choices}
    payout = StripePayout.objects.get()
    assert payout.bank_receipt is not None and payout.invoices.exists()
    counts = _counts()
    call_command("load_demo", stdout=open("/dev/null", "w"))
    assert _counts() == counts
    invoice = Invoice.objects.filter(status=Invoice.Status.OPEN).first()
    page = client.get(f"/pay/{invoice.public_token}/").content.decode()
    assert "Stripe is not configured" in page
    client.force_login(invoice.freelancer.user)
    assert client.get("/invoices/").status_code == 200


def _counts() -> tuple[int, int, int]:
    return Invoice.objects.count(), Receipt.objects.count(), StripePayout.objects.count()
