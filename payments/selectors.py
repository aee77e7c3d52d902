"""Reads that more than one caller needs."""

from django.db.models import QuerySet

from payments.models import Receipt


def counted_receipts() -> QuerySet[Receipt]:
    """Receipts that count in national statistics and incentives.

    Only bank-reported receipts count: a Stripe payment reaches the country through the bank
    remittance that carries its payout, so counting the Stripe receipt too would count the dollar
    twice. Reversed receipts and receipts under non-IT purpose codes do not count.
    """
    return Receipt.objects.filter(
        source=Receipt.Source.BANK, reversed_on__isnull=True, purpose_code__is_it=True
    )
