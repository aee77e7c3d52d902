"""Banks, purpose codes, dollar accounts and the one ledger of receipts (bank and Stripe)."""

from django.db import models
from django.db.models import F, Q

from freelancers.models import Freelancer

MONEY = {"max_digits": 18, "decimal_places": 2}


class PurposeCode(models.Model):
    """The central bank's purpose codes; receipts under codes with is_it count as IT exports."""

    code = models.CharField(max_length=8, unique=True)
    description = models.CharField(max_length=200)
    category = models.CharField(max_length=64)
    is_it = models.BooleanField(default=True, verbose_name="IT/ITeS")
    retired = models.BooleanField(default=False)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.description}"


class Bank(models.Model):
    code = models.CharField(max_length=12, unique=True)
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} ({self.name})"


class BankSecret(models.Model):
    """A webhook signing secret. A bank may hold several active ones while it rotates."""

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="secrets")
    secret = models.CharField(max_length=256)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["bank", "-created_at"]

    def __str__(self) -> str:
        return f"{self.bank.code} secret …{self.secret[-4:]}"

    @property
    def hint(self) -> str:
        return f"…{self.secret[-4:]}"


class DollarAccount(models.Model):
    """An exporter's special foreign-currency account, as a bank reported it."""

    iban = models.CharField(max_length=24, unique=True)
    currency = models.CharField(max_length=3)
    holder_cnic = models.CharField(max_length=13, db_index=True)
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="accounts")
    freelancer = models.ForeignKey(
        Freelancer, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    opened_on = models.DateField()
    closed_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["iban"]

    def __str__(self) -> str:
        return self.iban


class Receipt(models.Model):
    """Money from abroad credited to a Pakistani account: the one ledger for every source.

    Statistics and incentives read only this table. A receipt is never deleted: a reversal sets
    ``reversed_on`` and the receipt stops counting.
    """

    class Source(models.TextChoices):
        BANK = "bank", "Bank remittance"
        STRIPE = "stripe", "Stripe payment"

    source = models.CharField(max_length=8, choices=Source.choices, default=Source.BANK)
    # No single-column indexes for bank and freelancer: receipt_bank_date_idx and
    # receipt_freelancer_date_idx start with them (two index entries fewer per receipt).
    bank = models.ForeignKey(Bank, null=True, blank=True, on_delete=models.PROTECT, db_index=False)
    reference = models.CharField(max_length=64)
    # Indexed in Meta.indexes: a field's db_index also builds a second, pattern-ops index on
    # PostgreSQL for LIKE 'prefix%', which no query of receipts uses (IBANs are matched whole).
    iban = models.CharField(max_length=34, blank=True)
    account = models.ForeignKey(
        DollarAccount, null=True, blank=True, on_delete=models.PROTECT, related_name="receipts"
    )
    freelancer = models.ForeignKey(
        Freelancer,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="receipts",
        db_index=False,
    )
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    usd_amount = models.DecimalField(**MONEY)
    pkr_rate = models.DecimalField(max_digits=18, decimal_places=6)
    value_date = models.DateField(db_index=True)
    purpose_code = models.ForeignKey(PurposeCode, on_delete=models.PROTECT)
    retained_amount = models.DecimalField(**MONEY, default=0)
    tax_withheld_pkr = models.DecimalField(**MONEY, default=0)
    remitter_name = models.CharField(max_length=200, blank=True)
    remitter_country = models.CharField(max_length=2, blank=True)
    reversed_on = models.DateField(null=True, blank=True)
    reversal_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-value_date", "-id"]
        constraints = [
            # Idempotency: a bank's reference, or a Stripe payment intent, is recorded once.
            models.UniqueConstraint(
                fields=["bank", "reference"],
                condition=Q(source="bank"),
                name="receipt_unique_bank_reference",
            ),
            models.UniqueConstraint(
                fields=["reference"],
                condition=Q(source="stripe"),
                name="receipt_unique_stripe_reference",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="receipt_amount_positive"),
            models.CheckConstraint(condition=Q(usd_amount__gt=0), name="receipt_usd_positive"),
            models.CheckConstraint(condition=Q(pkr_rate__gt=0), name="receipt_rate_positive"),
            models.CheckConstraint(
                condition=Q(retained_amount__gte=0) & Q(retained_amount__lte=F("amount")),
                name="receipt_retained_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(tax_withheld_pkr__gte=0), name="receipt_tax_non_negative"
            ),
        ]
        indexes = [
            # Covering: a freelancer's earnings, and the statistics' incremental update, which
            # looks up the other receipts of each freelancer with a receipt just recorded, are
            # index-only scans (no heap page per receipt; bench/RESULTS.md).
            models.Index(
                fields=["freelancer", "value_date"],
                name="receipt_freelancer_date_idx",
                include=[
                    "id",
                    "usd_amount",
                    "purpose_code",
                    "remitter_country",
                    "source",
                    "reversed_on",
                ],
            ),
            # Receipts paid to an IBAN (linking an account's receipts); the name is the one
            # db_index gave it, so the index is kept as it is (payments/0006).
            models.Index(fields=["iban"], name="payments_receipt_iban_09361b84"),
            # Reconciliation (per bank and day) and the admin's bank filter.
            models.Index(fields=["bank", "value_date"], name="receipt_bank_date_idx"),
            # The unmatched queue and the linking sweep read only unmatched receipts.
            models.Index(
                fields=["iban"],
                condition=Q(account__isnull=True),
                name="receipt_unmatched_iban_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reference} {self.amount} {self.currency}"
