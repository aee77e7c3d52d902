"""payments models: Stripe invoices, the raw Stripe event store, and payouts with their matches.

A paid invoice records a Stripe receipt in the one ledger (``Receipt``, source "stripe"); Stripe
receipts never count nationally (``payments.selectors.counted_receipts``). A Stripe payout is
matched to the bank receipt (source "bank") that carried it to the freelancer's dollar account.
"""

import secrets
from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from freelancers.models import Freelancer, ServiceCategory
from payments.models.core import MONEY, DollarAccount, PurposeCode, Receipt

__all__ = [
    "INVOICE_CURRENCIES",
    "Invoice",
    "StripeAccount",
    "StripeEvent",
    "StripePayout",
    "UnmatchedStripePayout",
]

# Stripe amounts are integer minor units; every invoice currency has two decimal places.
INVOICE_CURRENCIES = [("USD", "US dollar"), ("EUR", "Euro"), ("GBP", "Pound sterling")]


def new_public_token() -> str:
    """An unguessable token for the client's payment page (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


class StripeAccount(models.Model):
    """A freelancer's Stripe connected account, and the dollar account its payouts go to.

    Checkout Sessions are created on this account (``Stripe-Account`` header), so its payouts
    (events carrying ``account``) are known to be this freelancer's.
    """

    freelancer = models.OneToOneField(
        Freelancer, on_delete=models.PROTECT, related_name="stripe_account"
    )
    account_id = models.CharField(max_length=64, unique=True, help_text="acct_…")
    payout_account = models.ForeignKey(
        DollarAccount,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The dollar account Stripe pays out to; payouts are matched against it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.account_id


class Invoice(models.Model):
    """An invoice a freelancer issues to a foreign client, paid by card through Stripe."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
        REFUNDED = "refunded", "Refunded"
        VOID = "void", "Void"

    freelancer = models.ForeignKey(Freelancer, on_delete=models.PROTECT, related_name="invoices")
    client_name = models.CharField(max_length=200)
    client_email = models.EmailField()
    client_country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    description = models.TextField(max_length=2000)
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, choices=INVOICE_CURRENCIES, default="USD")
    service_category = models.ForeignKey(
        ServiceCategory, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    purpose_code = models.ForeignKey(PurposeCode, on_delete=models.PROTECT, related_name="+")
    due_date = models.DateField()
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    public_token = models.CharField(max_length=64, unique=True, default=new_public_token)
    # Stripe side
    checkout_session_id = models.CharField(max_length=255, blank=True)
    checkout_url = models.URLField(max_length=1000, blank=True)
    checkout_expires_at = models.DateTimeField(null=True, blank=True)
    # Bumped when an expired session is replaced; part of the Checkout idempotency key.
    checkout_attempt = models.PositiveIntegerField(default=0)
    payment_intent_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    livemode = models.BooleanField(null=True, blank=True)
    amount_refunded = models.DecimalField(**MONEY, default=0)
    receipt = models.OneToOneField(
        Receipt, null=True, blank=True, on_delete=models.PROTECT, related_name="invoice"
    )
    payout = models.ForeignKey(
        "StripePayout", null=True, blank=True, on_delete=models.SET_NULL, related_name="invoices"
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoice_amount_positive"),
            models.CheckConstraint(
                condition=Q(amount_refunded__gte=0) & Q(amount_refunded__lte=F("amount")),
                name="invoice_refund_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(currency__in=[code for code, _ in INVOICE_CURRENCIES]),
                name="invoice_currency_supported",
            ),
        ]
        indexes = [
            models.Index(fields=["freelancer", "-id"], name="invoice_freelancer_idx"),
        ]

    def __str__(self) -> str:
        return f"Invoice {self.number} {self.amount} {self.currency}"

    @property
    def number(self) -> str:
        return f"INV-{self.pk:06d}" if self.pk else "INV-new"

    @property
    def amount_minor(self) -> int:
        """The amount in Stripe's integer minor units (exact: amounts have two decimals)."""
        return int(Decimal(self.amount) * 100)

    @property
    def in_transit(self) -> bool:
        """Paid to Stripe but not yet seen paid out to the freelancer's dollar account."""
        return self.status in (self.Status.PAID, self.Status.PARTIALLY_REFUNDED) and (
            self.payout_id is None
        )


class StripeEvent(models.Model):
    """Every Stripe webhook event, stored raw once by its id before it is trusted or applied.

    Keeps the verdict and any error, so a failed event can be replayed from the admin.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPLIED = "applied", "Applied"
        DEFERRED = "deferred", "Deferred (waiting for an earlier event)"
        IGNORED = "ignored", "Ignored"
        FAILED = "failed", "Failed"

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100, db_index=True)
    livemode = models.BooleanField()
    account = models.CharField(max_length=64, blank=True, help_text="Connected account, if any")
    # The payment intent the event is about, to re-apply deferred events when it becomes known.
    payment_intent_id = models.CharField(max_length=64, blank=True, db_index=True)
    created = models.DateTimeField(help_text="When Stripe created the event")
    payload = models.JSONField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    verdict = models.CharField(max_length=300, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


class StripePayout(models.Model):
    """A Stripe payout to a freelancer's dollar account, and the bank receipt that carried it."""

    payout_id = models.CharField(max_length=64, unique=True)
    account = models.CharField(max_length=64, blank=True)
    freelancer = models.ForeignKey(
        Freelancer, null=True, blank=True, on_delete=models.PROTECT, related_name="stripe_payouts"
    )
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    arrival_date = models.DateField(db_index=True)
    livemode = models.BooleanField()
    # One bank remittance carries at most one payout: the unique constraint is the guard.
    bank_receipt = models.OneToOneField(
        Receipt,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="stripe_payout",
        limit_choices_to={"source": "bank"},
    )
    matched_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-arrival_date", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="stripe_payout_amount_positive")
        ]
        indexes = [
            models.Index(
                fields=["arrival_date"],
                condition=Q(bank_receipt__isnull=True),
                name="stripe_payout_unmatched_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.payout_id} {self.amount} {self.currency}"


class UnmatchedStripePayout(StripePayout):
    """Admin view: payouts no bank remittance was matched to within the window (the queue)."""

    class Meta:
        proxy = True
        verbose_name = "reconciliation queue: unmatched Stripe payout"
