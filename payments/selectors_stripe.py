"""Reads about Stripe invoices that more than one caller needs (portal, API, statements)."""

from collections import defaultdict
from decimal import Decimal

from django.db.models import F, Sum

from freelancers.models import Freelancer
from payments.models import Invoice

CENT = Decimal("0.01")


def invoices_in_transit_totals(*, freelancer: Freelancer) -> dict[str, Decimal]:
    """Net amounts (less refunds) of paid invoices not yet paid out, per currency: the
    freelancer's income "in transit". One grouped query."""
    rows = (
        Invoice.objects.filter(
            freelancer=freelancer,
            status__in=[Invoice.Status.PAID, Invoice.Status.PARTIALLY_REFUNDED],
            payout__isnull=True,
        )
        .values("currency")
        .annotate(total=Sum(F("amount") - F("amount_refunded")))
        .order_by("currency")
    )
    # SQLite returns the difference without its scale; amounts are cents either way.
    return {row["currency"]: Decimal(row["total"]).quantize(CENT) for row in rows}


def invoices_settled_by_receipts(*, receipt_ids: list[int]) -> dict[int, list[Invoice]]:
    """For bank receipts (remittances), the invoices whose Stripe payout each one carried, for a
    statement. One query."""
    settled: dict[int, list[Invoice]] = defaultdict(list)
    invoices = Invoice.objects.filter(payout__bank_receipt_id__in=receipt_ids).select_related(
        "payout"
    )
    for invoice in invoices.order_by("id"):
        settled[invoice.payout.bank_receipt_id].append(invoice)
    return dict(settled)
