"""Stripe payouts matched to the bank remittance that carried them; the reconciliation queue."""

import datetime
import json
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from payments.models import Invoice, Receipt, StripeEvent, StripePayout
from payments.selectors import counted_receipts
from payments.services.stripe_payouts import (
    stripe_payout_match,
    stripe_payout_record,
    stripe_payouts_match_pending,
    unmatched_payouts_queue,
)
from tests.factories import (
    DollarAccountFactory,
    InvoiceFactory,
    ReceiptFactory,
    StripeAccountFactory,
)
from tests.payments.stripe_fixtures import WEBHOOK_SECRET, envelope, fixture, sign

ARRIVAL = datetime.date(2024, 3, 14)


def payout_dict(payout_id: str, amount_minor: int, arrival: datetime.date = ARRIVAL) -> dict:
    """payout.fixtures3.json (in_transit, 1100 usd) derived to a paid payout."""
    payout = fixture("payout.fixtures3.json")
    ts = int(datetime.datetime.combine(arrival, datetime.time(), tzinfo=datetime.UTC).timestamp())
    payout.update({"id": payout_id, "status": "paid", "amount": amount_minor, "arrival_date": ts})
    payout["created"] = ts - 2 * 86400
    return payout


def record(connected, payout_id="po_1", amount_minor=100_000, arrival=ARRIVAL):
    paid_at = datetime.datetime.combine(arrival, datetime.time(), tzinfo=datetime.UTC)
    payout, _ = stripe_payout_record(
        payout=payout_dict(payout_id, amount_minor, arrival),
        account=connected.account_id,
        livemode=False,
        paid_at=paid_at,
    )
    payout.refresh_from_db()
    return payout


@pytest.mark.django_db
def test_payout_matches_the_remittance_by_account_amount_and_date_window():
    connected = StripeAccountFactory()
    other_account = DollarAccountFactory(freelancer=connected.freelancer)
    ReceiptFactory(account=other_account, amount=Decimal("1000.00"), value_date=ARRIVAL)
    ReceiptFactory(account=connected.payout_account, amount=Decimal("999.99"), value_date=ARRIVAL)
    ReceiptFactory(
        account=connected.payout_account, amount=Decimal("1000.00"), value_date=date_after(9)
    )
    carried = ReceiptFactory(
        account=connected.payout_account, amount=Decimal("1000.00"), value_date=date_after(2)
    )
    payout = record(connected)
    assert payout.bank_receipt == carried
    # The bank's remittance is what counts nationally; the payout adds nothing to it.
    assert counted_receipts().filter(pk=carried.pk).exists()


def date_after(days: int) -> datetime.date:
    return ARRIVAL + datetime.timedelta(days=days)


@pytest.mark.django_db
def test_remittance_arriving_after_the_payout_is_matched_by_the_sweep():
    connected = StripeAccountFactory()
    payout = record(connected)
    assert payout.bank_receipt is None
    carried = ReceiptFactory(
        account=connected.payout_account, amount=Decimal("1000.00"), value_date=date_after(1)
    )
    today = date_after(3)
    assert stripe_payouts_match_pending(today=today) == 1
    assert stripe_payouts_match_pending(today=today) == 0  # nothing left to match
    payout.refresh_from_db()
    assert payout.bank_receipt == carried


@pytest.mark.django_db
def test_one_remittance_never_settles_two_payouts():
    connected = StripeAccountFactory()
    carried = ReceiptFactory(
        account=connected.payout_account, amount=Decimal("1000.00"), value_date=ARRIVAL
    )
    first = record(connected, "po_a")
    second = record(connected, "po_b")
    assert first.bank_receipt == carried
    assert second.bank_receipt is None
    assert not stripe_payout_match(payout_id=second.pk)


@pytest.mark.django_db
def test_unmatched_payout_enters_the_reconciliation_queue_after_a_few_days():
    connected = StripeAccountFactory()
    payout = record(connected)
    assert list(unmatched_payouts_queue(today=date_after(2))) == []
    assert list(unmatched_payouts_queue(today=date_after(10))) == [payout]


@pytest.mark.django_db
def test_payout_links_the_invoices_it_settles_and_the_statement_shows_the_remittance(client):
    connected = StripeAccountFactory()
    paid = InvoiceFactory(
        freelancer=connected.freelancer,
        status=Invoice.Status.PAID,
        livemode=False,
        paid_at=datetime.datetime(2024, 3, 10, tzinfo=datetime.UTC),
        receipt=ReceiptFactory(source=Receipt.Source.STRIPE, bank=None, reference="pi_x"),
    )
    later = InvoiceFactory(
        freelancer=connected.freelancer,
        status=Invoice.Status.PAID,
        livemode=False,
        paid_at=datetime.datetime(2024, 3, 20, tzinfo=datetime.UTC),
        receipt=ReceiptFactory(source=Receipt.Source.STRIPE, bank=None, reference="pi_y"),
    )
    carried = ReceiptFactory(
        account=connected.payout_account, amount=Decimal("1000.00"), value_date=ARRIVAL
    )
    payout = record(connected)
    paid.refresh_from_db()
    later.refresh_from_db()
    assert paid.payout == payout and later.payout is None
    client.force_login(connected.freelancer.user)
    page = client.get("/invoices/").content.decode()
    assert f"remittance {carried.reference}" in page


def _post(payload: str) -> int:
    try:
        response = Client().post(
            "/api/v1/webhooks/stripe/",
            data=payload,
            content_type="application/json",
            HTTP_STRIPE_SIGNATURE=sign(payload),
        )
        return response.status_code
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_payment_record_one_receipt(settings):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    invoice = InvoiceFactory(status=Invoice.Status.OPEN)
    session = fixture("checkout_session.fixtures3.json")  # derived: paid, for this invoice
    session.update(
        payment_status="paid",
        amount_total=invoice.amount_minor,
        currency="usd",
        metadata={"invoice_id": str(invoice.pk)},
    )
    payloads = [
        json.dumps(envelope("checkout.session.completed", session, event_id=f"evt_c{n % 2}"))
        for n in range(6)
    ]
    results: list[int] = []
    threads = [threading.Thread(target=lambda p=p: results.append(_post(p))) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [200] * 6
    assert StripeEvent.objects.count() == 2
    assert Receipt.objects.filter(source="stripe").count() == 1
    assert Invoice.objects.get(pk=invoice.pk).status == Invoice.Status.PAID


def test_beat_sweeps_are_scheduled_and_registered():
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for name in ["payments.tasks.stripe_events_sweep", "payments.tasks.stripe_payouts_match_sweep"]:
        assert name in tasks
        assert name in app.tasks


@pytest.mark.django_db
def test_selectors_match_a_plain_python_definition_on_small_data():
    from payments.selectors_stripe import invoices_in_transit_totals, invoices_settled_by_receipts

    connected = StripeAccountFactory()
    freelancer = connected.freelancer
    made = []
    for n, (status, amount, refunded, currency) in enumerate(
        [
            (Invoice.Status.PAID, "100.00", "0", "USD"),
            (Invoice.Status.PARTIALLY_REFUNDED, "200.00", "50.00", "USD"),
            (Invoice.Status.PAID, "70.00", "0", "EUR"),
            (Invoice.Status.REFUNDED, "90.00", "90.00", "USD"),
            (Invoice.Status.OPEN, "40.00", "0", "USD"),
        ]
    ):
        made.append(
            InvoiceFactory(
                freelancer=freelancer,
                status=status,
                amount=Decimal(amount),
                amount_refunded=Decimal(refunded),
                currency=currency,
                livemode=False,
                paid_at=datetime.datetime(2024, 3, 1, tzinfo=datetime.UTC),
                receipt=ReceiptFactory(source=Receipt.Source.STRIPE, bank=None, reference=f"pi_{n}")
                if status != Invoice.Status.OPEN
                else None,
            )
        )
    expected: dict[str, Decimal] = {}
    for invoice in made:
        if invoice.status in ("paid", "partially_refunded") and invoice.payout_id is None:
            expected[invoice.currency] = expected.get(invoice.currency, 0) + (
                invoice.amount - invoice.amount_refunded
            )
    totals = invoices_in_transit_totals(freelancer=freelancer)
    assert totals == expected
    assert {currency: str(total) for currency, total in totals.items()} == {
        "EUR": "70.00",
        "USD": "250.00",
    }
    carried = ReceiptFactory(
        account=connected.payout_account, amount=Decimal("1000.00"), value_date=ARRIVAL
    )
    payout = record(connected)
    assert payout.bank_receipt == carried
    settled = invoices_settled_by_receipts(receipt_ids=[carried.pk])
    assert settled == {carried.pk: [i for i in made if i.status in ("paid", "partially_refunded")]}
    assert invoices_in_transit_totals(freelancer=freelancer) == {}


@pytest.mark.django_db(transaction=True)
def test_two_payouts_racing_for_one_remittance_match_it_once():
    connected = StripeAccountFactory()
    carried = ReceiptFactory(
        account=connected.payout_account, amount=Decimal("1000.00"), value_date=ARRIVAL
    )
    payouts = [
        StripePayout.objects.create(
            payout_id=f"po_race_{n}",
            account=connected.account_id,
            freelancer=connected.freelancer,
            amount=Decimal("1000.00"),
            currency="USD",
            arrival_date=ARRIVAL,
            livemode=False,
        )
        for n in range(4)
    ]
    results: list[bool] = []

    def match(pk: int) -> None:
        try:
            results.append(stripe_payout_match(payout_id=pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=match, args=(p.pk,)) for p in payouts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert StripePayout.objects.filter(bank_receipt=carried).count() == 1
