"""Reads for earnings, the retention rule, reconciliation and the unmatched queue.

Rounding: every per-receipt figure is rounded half-up to the cent (``ROUND_HALF_UP``); totals are
the sums of the rounded per-receipt figures, so a statement's rows add up to its totals.
"""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Greatest

from freelancers.models import Freelancer
from payments.models import DollarAccount, Receipt

CENT = Decimal("0.01")
RETENTION_SHARE = Decimal("0.5")
RETENTION_FLOOR_USD = Decimal("5000.00")


def month_from_text(value: str) -> datetime.date | None:
    """``YYYY-MM`` as the first day of that month, or None when it is not a month."""
    try:
        return datetime.datetime.strptime(value, "%Y-%m").date()
    except ValueError:
        return None


def month_bounds(month: datetime.date) -> tuple[datetime.date, datetime.date]:
    start = month.replace(day=1)
    end = (start + datetime.timedelta(days=32)).replace(day=1)
    return start, end


@dataclass
class ReceiptLine:
    """One receipt as a statement shows it."""

    id: int
    reference: str
    value_date: datetime.date
    bank: str
    iban: str
    amount: Decimal
    currency: str
    usd_amount: Decimal
    retained_amount: Decimal
    retained_usd: Decimal
    converted_usd: Decimal
    converted_pkr: Decimal
    pkr_rate: Decimal
    tax_withheld_pkr: Decimal
    purpose_code: str
    remitter_country: str
    reversed_on: datetime.date | None
    freelancer_id: int | None = None

    @property
    def counts(self) -> bool:
        return self.reversed_on is None


def receipt_line(values: dict) -> ReceiptLine:
    """Split a receipt into its retained (kept in foreign currency) and converted (PKR) parts."""
    amount, usd = values["amount"], values["usd_amount"]
    retained = values["retained_amount"]
    retained_usd = (usd * retained / amount).quantize(CENT, ROUND_HALF_UP)
    return ReceiptLine(
        id=values["id"],
        reference=values["reference"],
        value_date=values["value_date"],
        bank=values.get("bank__code") or "",
        iban=values["iban"],
        amount=amount,
        currency=values["currency"],
        usd_amount=usd,
        retained_amount=retained,
        retained_usd=retained_usd,
        converted_usd=usd - retained_usd,
        converted_pkr=((amount - retained) * values["pkr_rate"]).quantize(CENT, ROUND_HALF_UP),
        pkr_rate=values["pkr_rate"],
        tax_withheld_pkr=values["tax_withheld_pkr"],
        purpose_code=values.get("purpose_code__code") or "",
        remitter_country=values["remitter_country"],
        reversed_on=values["reversed_on"],
        freelancer_id=values.get("freelancer_id"),
    )


LINE_FIELDS = (
    "id",
    "reference",
    "value_date",
    "bank__code",
    "iban",
    "amount",
    "currency",
    "usd_amount",
    "retained_amount",
    "pkr_rate",
    "tax_withheld_pkr",
    "purpose_code__code",
    "remitter_country",
    "reversed_on",
    "freelancer_id",
)


@dataclass
class Totals:
    receipts: int = 0
    usd_received: Decimal = Decimal("0.00")
    usd_retained: Decimal = Decimal("0.00")
    usd_converted: Decimal = Decimal("0.00")
    pkr_converted: Decimal = Decimal("0.00")
    tax_withheld_pkr: Decimal = Decimal("0.00")

    def add(self, line: ReceiptLine) -> None:
        if not line.counts:
            return
        self.receipts += 1
        self.usd_received += line.usd_amount
        self.usd_retained += line.retained_usd
        self.usd_converted += line.converted_usd
        self.pkr_converted += line.converted_pkr
        self.tax_withheld_pkr += line.tax_withheld_pkr


@dataclass
class Statement:
    freelancer: Freelancer
    month: datetime.date
    lines: list[ReceiptLine] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)


def freelancer_accounts(*, freelancer: Freelancer) -> QuerySet[DollarAccount]:
    return DollarAccount.objects.filter(freelancer=freelancer).select_related("bank")


def freelancer_statement(*, freelancer: Freelancer, month: datetime.date) -> Statement:
    """The freelancer's receipts with a value date in ``month`` and their totals (reversed receipts
    are listed but not counted). Bank receipts only: a Stripe payment reaches the freelancer through
    the bank remittance that carries its payout."""
    start, end = month_bounds(month)
    statement = Statement(freelancer=freelancer, month=start)
    rows = (
        Receipt.objects.filter(
            freelancer=freelancer,
            source=Receipt.Source.BANK,
            value_date__gte=start,
            value_date__lt=end,
        )
        .order_by("value_date", "id")
        .values(*LINE_FIELDS)
    )
    for row in rows:
        line = receipt_line(row)
        statement.lines.append(line)
        statement.totals.add(line)
    return statement


def freelancer_months(*, freelancer: Freelancer) -> list[tuple[datetime.date, Totals]]:
    """Totals per month (newest first) for every month with a receipt."""
    by_month: dict[datetime.date, Totals] = defaultdict(Totals)
    rows = Receipt.objects.filter(freelancer=freelancer, source=Receipt.Source.BANK).values(
        *LINE_FIELDS
    )
    for row in rows:
        line = receipt_line(row)
        totals = by_month[line.value_date.replace(day=1)]
        totals.add(line)
    return sorted(by_month.items(), reverse=True)


# --- retention rule -------------------------------------------------------------------------------


@dataclass
class RetentionBreach:
    """A holder (freelancer, or IBAN when unmatched) who kept more in dollars than allowed in a
    month, and the receipts whose retention went over the allowance."""

    month: datetime.date
    freelancer_id: int | None
    iban: str
    proceeds_usd: Decimal
    allowance_usd: Decimal
    retained_usd: Decimal
    flagged: list[ReceiptLine]


def retention_breaches(*, month: datetime.date) -> list[RetentionBreach]:
    """The retention rule for ``month``: a holder may keep in dollars the greater of 50% of the
    month's proceeds or USD 5,000. Holder = the freelancer, or the IBAN for unmatched receipts.
    Counts bank receipts not reversed, by value date. Receipts are taken in (value_date, id) order;
    each receipt after which the running retained total exceeds the allowance is flagged.

    Set-based: one aggregate query finds the holders whose retained total can exceed the allowance
    (a cent's tolerance for the database's decimal arithmetic), then their receipts are checked
    exactly in Python.
    """
    start, end = month_bounds(month)
    month_receipts = Receipt.objects.filter(
        source=Receipt.Source.BANK,
        reversed_on__isnull=True,
        value_date__gte=start,
        value_date__lt=end,
    )
    retained_expr = ExpressionWrapper(
        F("usd_amount") * F("retained_amount") / F("amount"),
        output_field=DecimalField(max_digits=30, decimal_places=6),
    )
    over = Q(
        retained__gt=Greatest(F("proceeds") * Value(RETENTION_SHARE), Value(RETENTION_FLOOR_USD))
        - Value(CENT)
    )
    matched = list(
        month_receipts.filter(freelancer__isnull=False)
        .values("freelancer_id")
        .annotate(proceeds=Sum("usd_amount"), retained=Sum(retained_expr))
        .filter(over)
        .values_list("freelancer_id", flat=True)
    )
    ibans = list(
        month_receipts.filter(freelancer__isnull=True)
        .values("iban")
        .annotate(proceeds=Sum("usd_amount"), retained=Sum(retained_expr))
        .filter(over)
        .values_list("iban", flat=True)
    )
    if not matched and not ibans:
        return []
    rows = (
        month_receipts.filter(
            Q(freelancer_id__in=matched) | Q(freelancer__isnull=True, iban__in=ibans)
        )
        .order_by("value_date", "id")
        .values(*LINE_FIELDS)
    )
    groups: dict[tuple, list[ReceiptLine]] = defaultdict(list)
    for row in rows:
        line = receipt_line(row)
        key = (line.freelancer_id, "") if line.freelancer_id else (None, line.iban)
        groups[key].append(line)
    return [
        breach
        for key, lines in sorted(groups.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1]))
        if (breach := _breach(start, key, lines)) is not None
    ]


def _breach(month, key, lines: list[ReceiptLine]) -> RetentionBreach | None:
    proceeds = sum((line.usd_amount for line in lines), Decimal("0.00"))
    allowance = max((proceeds * RETENTION_SHARE).quantize(CENT, ROUND_HALF_UP), RETENTION_FLOOR_USD)
    running, flagged = Decimal("0.00"), []
    for line in lines:
        running += line.retained_usd
        if running > allowance:
            flagged.append(line)
    if not flagged:
        return None
    return RetentionBreach(month, key[0], key[1], proceeds, allowance, running, flagged)


# --- reconciliation and queue ---------------------------------------------------------------------


def reconciliation(
    *, date_from: datetime.date, date_to: datetime.date, bank_id: int | None = None
) -> list[dict]:
    """Per bank, value date and currency: how many receipts the portal holds and their sums
    (reversed ones also counted separately), for a bank to compare with its own statement. One
    grouped query over the (bank, value_date) index; sums quantized to the cent."""
    qs = Receipt.objects.filter(
        source=Receipt.Source.BANK, value_date__gte=date_from, value_date__lte=date_to
    )
    if bank_id:
        qs = qs.filter(bank_id=bank_id)
    rows = list(
        qs.values("bank__code", "value_date", "currency")
        .annotate(
            receipts=Count("id"),
            total_amount=Sum("amount"),
            total_usd=Sum("usd_amount"),
            reversed=Count("id", filter=Q(reversed_on__isnull=False)),
            reversed_amount=Sum("amount", filter=Q(reversed_on__isnull=False)),
        )
        .order_by("bank__code", "value_date", "currency")
    )
    for row in rows:
        for key in ("total_amount", "total_usd", "reversed_amount"):
            row[key] = Decimal(str(row[key] or 0)).quantize(CENT, ROUND_HALF_UP)
    return rows
