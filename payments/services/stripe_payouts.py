"""Stripe payouts: record them, and match each to the bank remittance that carried it.

A payout counts nowhere by itself: the bank receipt it is matched to is what national statistics
count (``counted_receipts``), and the match lets the freelancer's statement show which invoices a
remittance settled.
"""

import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from payments.models import DollarAccount, Invoice, Receipt, StripeAccount, StripePayout
from payments.services.invoices import minor_to_decimal

# A bank may credit the payout a day before Stripe's arrival date (time zones) or a few days after.
MATCH_DAYS_BEFORE = 1
MATCH_DAYS_AFTER = 5
# Payouts still unmatched this many days after arrival appear in the reconciliation queue.
QUEUE_AFTER_DAYS = 5
# The sweep keeps trying payouts up to this age; older ones stay in the queue for a person.
SWEEP_MAX_AGE_DAYS = 60


def stripe_payout_record(
    *, payout: dict, account: str, livemode: bool, paid_at: datetime.datetime
) -> tuple[StripePayout, bool]:
    """Record a paid Stripe payout once by its id, link the freelancer's paid invoices it settles,
    and try to match it to a bank receipt.

    Idempotent (unique payout id; a second call returns the stored payout). The invoices linked
    are the freelancer's paid, not yet paid-out invoices paid before the payout was created:
    Stripe's automatic payouts sweep the whole available balance. Raises ValueError for a payout
    whose amount is not a positive integer of minor units.
    """
    amount_minor = payout.get("amount")
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor <= 0:
        raise ValueError(f"payout amount must be a positive integer, got {amount_minor!r}")
    arrival = payout.get("arrival_date") or payout.get("created")
    arrival_date = datetime.datetime.fromtimestamp(int(arrival), tz=datetime.UTC).date()
    connected = StripeAccount.objects.filter(account_id=account).first() if account else None
    with transaction.atomic():
        try:
            with transaction.atomic():
                record, created = StripePayout.objects.get_or_create(
                    payout_id=payout["id"],
                    defaults={
                        "account": account or "",
                        "freelancer": connected.freelancer if connected else None,
                        "amount": minor_to_decimal(amount_minor),
                        "currency": str(payout.get("currency", "")).upper(),
                        "arrival_date": arrival_date,
                        "livemode": livemode,
                    },
                )
        except IntegrityError:
            record, created = StripePayout.objects.get(payout_id=payout["id"]), False
        if created and record.freelancer_id:
            created_at = datetime.datetime.fromtimestamp(
                int(payout.get("created") or paid_at.timestamp()), tz=datetime.UTC
            )
            Invoice.objects.filter(
                freelancer_id=record.freelancer_id,
                payout__isnull=True,
                receipt__isnull=False,
                paid_at__lte=max(created_at, paid_at),
                status__in=[Invoice.Status.PAID, Invoice.Status.PARTIALLY_REFUNDED],
                livemode=livemode,
            ).update(payout=record)
    stripe_payout_match(payout_id=record.pk)
    return record, created


def _payout_ibans(payout: StripePayout) -> list[str]:
    if payout.freelancer_id is None:
        return []
    connected = StripeAccount.objects.filter(freelancer_id=payout.freelancer_id).first()
    if connected and connected.payout_account_id:
        return [connected.payout_account.iban]
    return list(
        DollarAccount.objects.filter(
            freelancer_id=payout.freelancer_id, currency=payout.currency
        ).values_list("iban", flat=True)
    )


def payout_match_candidates(payout: StripePayout) -> QuerySet[Receipt]:
    """Bank receipts that could have carried the payout: same account, amount and currency, value
    date within the window, not reversed, not already carrying another payout."""
    return Receipt.objects.filter(
        source=Receipt.Source.BANK,
        iban__in=_payout_ibans(payout),
        currency=payout.currency,
        amount=payout.amount,
        value_date__gte=payout.arrival_date - datetime.timedelta(days=MATCH_DAYS_BEFORE),
        value_date__lte=payout.arrival_date + datetime.timedelta(days=MATCH_DAYS_AFTER),
        reversed_on__isnull=True,
        stripe_payout__isnull=True,
    ).order_by("value_date", "id")


def stripe_payout_match(*, payout_id: int) -> bool:
    """Match one payout to the earliest fitting bank receipt; True when it is matched.

    Idempotent (a matched payout stays as it is). Locks the payout row; the one-to-one on
    ``bank_receipt`` makes sure two payouts never claim the same receipt, even concurrently (the
    loser tries the next candidate).
    """
    with transaction.atomic():
        payout = StripePayout.objects.select_for_update().get(pk=payout_id)
        if payout.bank_receipt_id:
            return True
        for receipt_id in payout_match_candidates(payout).values_list("id", flat=True)[:5]:
            try:
                with transaction.atomic():
                    StripePayout.objects.filter(pk=payout.pk).update(
                        bank_receipt_id=receipt_id, matched_at=timezone.now()
                    )
                return True
            except IntegrityError:
                continue
    return False


def stripe_payouts_match_pending(*, today: datetime.date | None = None) -> int:
    """The sweep: try to match every unmatched payout up to SWEEP_MAX_AGE_DAYS old (bank
    remittances may arrive after the payout event). Safe to run twice; returns how many matched."""
    today = today or timezone.localdate()
    pending = StripePayout.objects.filter(
        bank_receipt__isnull=True,
        freelancer__isnull=False,
        arrival_date__gte=today - datetime.timedelta(days=SWEEP_MAX_AGE_DAYS),
    ).values_list("id", flat=True)
    return sum(stripe_payout_match(payout_id=pk) for pk in list(pending))


def unmatched_payouts_queue(*, today: datetime.date | None = None) -> QuerySet[StripePayout]:
    """Payouts with no bank remittance matched QUEUE_AFTER_DAYS after arrival: for a person."""
    today = today or timezone.localdate()
    return StripePayout.objects.filter(
        bank_receipt__isnull=True,
        arrival_date__lt=today - datetime.timedelta(days=QUEUE_AFTER_DAYS),
    )


def payout_amount_settled(payout: StripePayout) -> Decimal:
    """Net invoice amounts linked to the payout (for display; Stripe fees make it differ)."""
    total = Decimal("0")
    for amount, refunded in payout.invoices.values_list("amount", "amount_refunded"):
        total += amount - refunded
    return total
