"""payments models: incentives (rebates and cash rewards against converted export proceeds).

A scheme's rules are data (rate, basis, minimum, growth, cap, budget, purpose codes). Computing it
writes one ``Entitlement`` per eligible freelancer and one ``Exclusion`` per freelancer it
assessed and excluded. Approval freezes them; export writes a ``PayoutBatch`` with one
``IncentivePayout`` per entitlement (unique), which is later marked paid. All amounts are PKR
Decimals with two places (paisa) unless the field name says USD.
"""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from simple_history.models import HistoricalRecords
from stdnum import iban as iban_module

from freelancers.models import Freelancer
from payments.models.core import MONEY, PurposeCode

__all__ = [
    "IncentiveScheme",
    "Entitlement",
    "Exclusion",
    "PayoutAccount",
    "PayoutBatch",
    "IncentivePayout",
]

FISCAL_YEAR_RE = re.compile(r"^(\d{4})-(\d{2})$")
PERCENT = {"max_digits": 9, "decimal_places": 4}


def validate_fiscal_year(value: str) -> None:
    """A fiscal year is named by both calendar years: July 2024 - June 2025 is "2024-25"."""
    match = FISCAL_YEAR_RE.match(value or "")
    if not match or (int(match.group(1)) + 1) % 100 != int(match.group(2)):
        raise ValidationError(f"{value!r} is not a fiscal year like 2024-25.")


def validate_pk_iban(value: str) -> None:
    """A Pakistani IBAN (PK, 24 characters) with correct check digits (python-stdnum)."""
    compact = iban_module.compact(value or "")
    if not compact.startswith("PK") or len(compact) != 24 or not iban_module.is_valid(compact):
        raise ValidationError("Enter a valid Pakistani IBAN (PK + 22 characters).")


class IncentiveScheme(models.Model):
    """A rebate or cash reward for one fiscal year; managed in the admin."""

    class Kind(models.TextChoices):
        REBATE = "rebate", "Rebate"
        CASH_REWARD = "cash_reward", "Cash reward"

    class Basis(models.TextChoices):
        ALL = "all", "All converted proceeds"
        INCREASE = "increase", "Increase over the previous fiscal year"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        COMPUTED = "computed", "Computed"
        APPROVED = "approved", "Approved"
        PAID = "paid", "Paid"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    fiscal_year = models.CharField(
        max_length=7, validators=[validate_fiscal_year], help_text='e.g. "2024-25" (July-June)'
    )
    rate_percent = models.DecimalField(**PERCENT, help_text="percent of the basis, e.g. 5")
    basis = models.CharField(max_length=16, choices=Basis.choices, default=Basis.ALL)
    min_proceeds_usd = models.DecimalField(**MONEY, default=0)
    growth_required_percent = models.DecimalField(
        **PERCENT, null=True, blank=True, help_text="minimum growth over the previous year (USD)"
    )
    cap_per_freelancer_pkr = models.DecimalField(**MONEY, null=True, blank=True)
    fund_budget_pkr = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="empty for an uncapped rebate"
    )
    purpose_codes = models.ManyToManyField(
        PurposeCode, blank=True, help_text="empty: every IT purpose code counts"
    )
    require_approved_before_receipt = models.BooleanField(
        default=False,
        help_text="count only receipts whose value date is on or after the registration's approval",
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True
    )
    # Bumped by every computation; an approval names the revision it saw.
    revision = models.PositiveIntegerField(default=0)
    compute_requested_at = models.DateTimeField(null=True, blank=True)
    compute_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    compute_error = models.TextField(blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    computed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    # Figures of the latest computation (so the admin never sums a million rows to show them).
    eligible_count = models.PositiveIntegerField(default=0)
    excluded_count = models.PositiveIntegerField(default=0)
    entitled_total_pkr = models.DecimalField(**MONEY, default=0)
    awarded_total_pkr = models.DecimalField(**MONEY, default=0)
    scaled = models.BooleanField(default=False, help_text="awards were scaled to the budget")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-fiscal_year", "name"]
        permissions = [("approve_incentive", "Can approve incentive scheme figures (four eyes)")]
        constraints = [
            models.CheckConstraint(condition=Q(rate_percent__gte=0), name="scheme_rate_non_neg"),
            models.CheckConstraint(
                condition=Q(min_proceeds_usd__gte=0), name="scheme_min_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(cap_per_freelancer_pkr__isnull=True) | Q(cap_per_freelancer_pkr__gte=0),
                name="scheme_cap_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(fund_budget_pkr__isnull=True) | Q(fund_budget_pkr__gte=0),
                name="scheme_budget_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(awarded_total_pkr__lte=models.F("fund_budget_pkr"))
                | Q(fund_budget_pkr__isnull=True),
                name="scheme_awards_within_budget",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.fiscal_year})"

    @property
    def is_frozen(self) -> bool:
        return self.status in (self.Status.APPROVED, self.Status.PAID)


class Entitlement(models.Model):
    """One eligible freelancer's award under a scheme, with the figures that justify it."""

    scheme = models.ForeignKey(
        IncentiveScheme, on_delete=models.CASCADE, related_name="entitlements", db_index=False
    )  # the unique (scheme, freelancer) index serves lookups by scheme
    freelancer = models.ForeignKey(Freelancer, on_delete=models.PROTECT, related_name="+")
    receipts_counted = models.PositiveIntegerField()
    proceeds_usd = models.DecimalField(**MONEY)
    proceeds_pkr = models.DecimalField(**MONEY)
    previous_proceeds_usd = models.DecimalField(**MONEY)
    previous_proceeds_pkr = models.DecimalField(**MONEY)
    growth_percent = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)
    basis_pkr = models.DecimalField(**MONEY)
    raw_amount_pkr = models.DecimalField(**MONEY)
    capped_amount_pkr = models.DecimalField(**MONEY)
    awarded_amount_pkr = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["scheme", "freelancer_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["scheme", "freelancer"], name="entitlement_unique_freelancer"
            ),
            models.CheckConstraint(
                condition=Q(awarded_amount_pkr__gte=0)
                & Q(awarded_amount_pkr__lte=models.F("capped_amount_pkr"))
                & Q(capped_amount_pkr__lte=models.F("raw_amount_pkr")),
                name="entitlement_award_within_entitlement",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.scheme_id}/{self.freelancer_id}: {self.awarded_amount_pkr} PKR"


class Exclusion(models.Model):
    """A freelancer the computation assessed (with receipts in either year) and excluded."""

    class Reason(models.TextChoices):
        REGISTRATION_INVALID = "registration_invalid", "Registration not valid"
        NO_PROCEEDS = "no_proceeds", "No converted proceeds counted in the fiscal year"
        BELOW_MINIMUM = "below_minimum", "Converted proceeds below the minimum"
        NO_PREVIOUS_YEAR = "no_previous_year", "No proceeds in the previous year to measure growth"
        INSUFFICIENT_GROWTH = "insufficient_growth", "Growth below the required percentage"
        NO_INCREASE = "no_increase", "No increase over the previous fiscal year"
        ZERO_AMOUNT = "zero_amount", "The amount rounds to zero"

    scheme = models.ForeignKey(
        IncentiveScheme, on_delete=models.CASCADE, related_name="exclusions", db_index=False
    )
    freelancer = models.ForeignKey(Freelancer, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=32, choices=Reason.choices)
    detail = models.CharField(max_length=300)
    receipts_counted = models.PositiveIntegerField()
    proceeds_usd = models.DecimalField(**MONEY)
    proceeds_pkr = models.DecimalField(**MONEY)
    previous_proceeds_usd = models.DecimalField(**MONEY)
    growth_percent = models.DecimalField(max_digits=18, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["scheme", "freelancer_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["scheme", "freelancer"], name="exclusion_unique_freelancer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.scheme_id}/{self.freelancer_id}: {self.reason}"


class PayoutAccount(models.Model):
    """The freelancer's PKR-linked bank account that incentives are paid into; entered on
    /incentives/. Its history is kept: a change of bank details is worth auditing."""

    freelancer = models.OneToOneField(
        Freelancer, on_delete=models.PROTECT, related_name="payout_account"
    )
    iban = models.CharField(max_length=24, validators=[validate_pk_iban])
    account_title = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    def __str__(self) -> str:
        return self.masked_iban

    @property
    def masked_iban(self) -> str:
        return f"{self.iban[:4]}************{self.iban[-4:]}" if self.iban else ""


class PayoutBatch(models.Model):
    """One bank disbursement file: the entitlements it claimed, with the IBANs of the day."""

    class Status(models.TextChoices):
        EXPORTED = "exported", "Exported"
        PAID = "paid", "Paid"

    scheme = models.ForeignKey(IncentiveScheme, on_delete=models.PROTECT, related_name="batches")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.EXPORTED)
    payouts_count = models.PositiveIntegerField(default=0)
    total_pkr = models.DecimalField(**MONEY, default=0)
    exported_at = models.DateTimeField(auto_now_add=True)
    exported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-exported_at"]
        verbose_name_plural = "payout batches"

    def __str__(self) -> str:
        return f"Batch {self.pk} of {self.scheme}"


class IncentivePayout(models.Model):
    """The payment of one entitlement: at most one ever (unique), in one batch."""

    entitlement = models.OneToOneField(Entitlement, on_delete=models.PROTECT, related_name="payout")
    batch = models.ForeignKey(PayoutBatch, on_delete=models.PROTECT, related_name="payouts")
    scheme = models.ForeignKey(IncentiveScheme, on_delete=models.PROTECT, related_name="payouts")
    freelancer = models.ForeignKey(Freelancer, on_delete=models.PROTECT, related_name="+")
    iban = models.CharField(max_length=24)
    amount_pkr = models.DecimalField(**MONEY)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "freelancer_id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_pkr__gt=0), name="payout_amount_positive")
        ]

    def __str__(self) -> str:
        return f"{self.amount_pkr} PKR to {self.freelancer_id}"
