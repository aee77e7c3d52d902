"""The Stripe admin pages: changelists, the reconciliation queue, linking a remittance by hand."""

import datetime
from decimal import Decimal

import pytest

from payments.models import StripePayout
from tests.factories import InvoiceFactory, ReceiptFactory, StaffFactory, StripeAccountFactory

pytestmark = pytest.mark.django_db


def test_admin_pages_render_and_the_queue_holds_only_old_unmatched_payouts(client):
    connected = StripeAccountFactory()
    InvoiceFactory(freelancer=connected.freelancer)
    old = StripePayout.objects.create(
        payout_id="po_old",
        freelancer=connected.freelancer,
        amount=Decimal("10.00"),
        currency="USD",
        arrival_date=datetime.date(2024, 1, 1),
        livemode=False,
    )
    StripePayout.objects.create(
        payout_id="po_new",
        freelancer=connected.freelancer,
        amount=Decimal("10.00"),
        currency="USD",
        arrival_date=datetime.date.today(),
        livemode=False,
    )
    client.force_login(StaffFactory(is_superuser=True))
    for name in ["invoice", "stripeevent", "stripepayout", "stripeaccount"]:
        assert client.get(f"/admin/payments/{name}/").status_code == 200
    queue = client.get("/admin/payments/unmatchedstripepayout/")
    assert queue.status_code == 200
    assert list(queue.context["cl"].result_list) == [old]


def test_staff_links_a_remittance_by_hand_from_the_queue(client):
    connected = StripeAccountFactory()
    payout = StripePayout.objects.create(
        payout_id="po_hand",
        freelancer=connected.freelancer,
        amount=Decimal("10.00"),
        currency="USD",
        arrival_date=datetime.date(2024, 1, 1),
        livemode=False,
    )
    remittance = ReceiptFactory(account=connected.payout_account, amount=Decimal("9.50"))
    client.force_login(StaffFactory(is_superuser=True))
    url = f"/admin/payments/unmatchedstripepayout/{payout.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(bank_receipt=remittance.pk, freelancer=connected.freelancer.pk)
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    payout.refresh_from_db()
    assert payout.bank_receipt == remittance and payout.matched_at is not None
