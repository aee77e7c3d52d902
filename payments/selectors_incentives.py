"""Reads for incentives: per-freelancer proceeds in one GROUP BY, the receipts that counted,
the freelancer's view of every scheme and the disbursement file's rows.

Conversion (the part of a receipt not retained in foreign currency is what counts):
  PKR  = (amount - retained_amount) * pkr_rate           exact (2 + 6 decimal places)
  USD  = usd_amount * (amount - retained_amount) / amount (= usd_amount when nothing retained)
Both are summed per freelancer in units of 1e-8 and rounded ONCE, on the freelancer's total,
to the paisa / cent with ROUND_HALF_UP (``round_minor``). PostgreSQL sums exact numerics; on
SQLite (the demo database, which stores decimals as binary floats) the sums are done on integer
cents and micro-rates, so PKR is exact there too and USD is truncated at 1e-8 per receipt.
"""

import datetime
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import models
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.expressions import Expression
from django.db.models.functions import TruncDate

from freelancers.models import Freelancer
from payments.models import (
    Entitlement,
    Exclusion,
    IncentivePayout,
    IncentiveScheme,
    PayoutBatch,
    PurposeCode,
    Receipt,
)
from payments.selectors import counted_receipts

E8 = Decimal(100_000_000)
CENT = Decimal("0.01")


def round_minor(units_e8: Decimal | int | None) -> Decimal:
    """A sum in 1e-8 units as a 2-place Decimal, rounded half up (to the paisa or the cent)."""
    return (Decimal(units_e8 or 0) / E8).quantize(CENT, rounding=ROUND_HALF_UP)


def fiscal_year_bounds(fiscal_year: str) -> tuple[datetime.date, datetime.date]:
    """First and last day of a fiscal year named like "2024-25" (July 2024 - June 2025)."""
    start_year = int(fiscal_year[:4])
    return datetime.date(start_year, 7, 1), datetime.date(start_year + 1, 6, 30)


def previous_fiscal_year(fiscal_year: str) -> str:
    start_year = int(fiscal_year[:4]) - 1
    return f"{start_year}-{(start_year + 1) % 100:02d}"


def fiscal_year_of(day: datetime.date) -> str:
    start_year = day.year if day.month >= 7 else day.year - 1
    return f"{start_year}-{(start_year + 1) % 100:02d}"


class _Converted(Expression):
    """A receipt's converted proceeds in 1e-8 PKR (``currency="pkr"``) or 1e-8 USD."""

    output_field = models.DecimalField(max_digits=38, decimal_places=0)

    def __init__(self, currency: str):
        super().__init__()
        self.currency = currency

    def as_sql(self, compiler, connection):
        t = compiler.quote_name_unless_alias(Receipt._meta.db_table)
        a, r, u, rate = (f"{t}.amount", f"{t}.retained_amount", f"{t}.usd_amount", f"{t}.pkr_rate")
        if self.currency == "pkr":
            return f"(({a} - {r}) * {rate} * 100000000)", []
        return (
            f"(CASE WHEN {r} = 0 THEN {u} * 100000000 "
            f"ELSE {u} * ({a} - {r}) * 100000000 / {a} END)",
            [],
        )

    def as_sqlite(self, compiler, connection):
        t = compiler.quote_name_unless_alias(Receipt._meta.db_table)

        def cents(column: str) -> str:
            return f"CAST(ROUND({t}.{column} * 100) AS INTEGER)"

        conv = f"({cents('amount')} - {cents('retained_amount')})"
        if self.currency == "pkr":
            return f"({conv} * CAST(ROUND({t}.pkr_rate * 1000000) AS INTEGER))", []
        u, a = cents("usd_amount"), cents("amount")
        # usd * conv / amount in 1e-8 USD (1e-6 cents), exact up to truncation: split the
        # quotient so that no intermediate product overflows 64 bits.
        return (
            f"(CASE WHEN {t}.retained_amount = 0 THEN {u} * 1000000 "
            f"ELSE ({u} * {conv} / {a}) * 1000000 + (({u} * {conv}) %% {a}) * 1000000 / {a} END)",
            [],
        )


def scheme_receipts(*, scheme: IncentiveScheme) -> QuerySet[Receipt]:
    """Counted receipts under the scheme's purpose codes in its fiscal year and the one before."""
    start, end = fiscal_year_bounds(scheme.fiscal_year)
    previous_start, _ = fiscal_year_bounds(previous_fiscal_year(scheme.fiscal_year))
    qs = counted_receipts().filter(
        freelancer__isnull=False, value_date__gte=previous_start, value_date__lte=end
    )
    code_ids = [c.pk for c in scheme.purpose_codes.all()]
    if code_ids:
        qs = qs.filter(purpose_code_id__in=code_ids)
    return qs


def _current_year_q(scheme: IncentiveScheme) -> Q:
    start, _ = fiscal_year_bounds(scheme.fiscal_year)
    q = Q(value_date__gte=start)
    if scheme.require_approved_before_receipt:
        # On or after the day of approval (Asia/Karachi); a registration never approved counts none.
        q &= Q(value_date__gte=TruncDate("freelancer__approved_at"))
    return q


@dataclass(frozen=True, slots=True)
class FreelancerProceeds:
    freelancer_id: int
    status: str
    expires_on: datetime.date | None
    receipts_counted: int
    proceeds_usd: Decimal
    proceeds_pkr: Decimal
    previous_proceeds_usd: Decimal
    previous_proceeds_pkr: Decimal


def proceeds_query(*, scheme: IncentiveScheme) -> QuerySet:
    """The ONE GROUP BY query over the receipts of both fiscal years: per freelancer, the
    registration's status and expiry, the receipts counted this year (``n``) and the converted
    proceeds of each year in 1e-8 units (``cur_usd``, ``cur_pkr``, ``prev_usd``, ``prev_pkr``)."""
    current = _current_year_q(scheme)
    start, _ = fiscal_year_bounds(scheme.fiscal_year)
    previous = Q(value_date__lt=start)
    return (
        scheme_receipts(scheme=scheme)
        .values("freelancer_id", "freelancer__status", "freelancer__expires_on")
        .annotate(
            n=Count("id", filter=current),
            cur_usd=Sum(_Converted("usd"), filter=current),
            cur_pkr=Sum(_Converted("pkr"), filter=current),
            prev_usd=Sum(_Converted("usd"), filter=previous),
            prev_pkr=Sum(_Converted("pkr"), filter=previous),
        )
        .order_by("freelancer_id")
    )


def proceeds_sql(*, scheme: IncentiveScheme) -> tuple[str, list]:
    """PostgreSQL: ``proceeds_query`` hand-written for one pass over the receipts, with the same
    columns and the same per-receipt expressions (``_Converted``), but cheaper per row: the
    purpose codes are resolved to ids first (no join), the freelancer's first counting day
    (the fiscal year's start or the day of approval, Asia/Karachi) is computed once per
    freelancer instead of per receipt (and only when the scheme asks for it), the registration's
    status is joined to the much smaller result of the GROUP BY, and nothing is sorted. Tests
    compare the computation with a plain Python definition."""
    from django.db import connection
    from django.utils import timezone

    start, end = fiscal_year_bounds(scheme.fiscal_year)
    previous_start, _ = fiscal_year_bounds(previous_fiscal_year(scheme.fiscal_year))
    codes = PurposeCode.objects.filter(is_it=True)
    scheme_codes = [c.pk for c in scheme.purpose_codes.all()]
    if scheme_codes:
        codes = codes.filter(pk__in=scheme_codes)
    code_ids = list(codes.values_list("pk", flat=True))
    q = connection.ops.quote_name
    receipt, freelancer = q(Receipt._meta.db_table), q(Freelancer._meta.db_table)
    # Dates are rendered as literals (they come from a validated fiscal year, never from input).
    start_sql = f"DATE '{start.isoformat()}'"
    if scheme.require_approved_before_receipt:
        # Receipts count from the later of the year's start and the day of approval: computed
        # once per freelancer, joined before the GROUP BY.
        source = (
            f"{receipt} r JOIN (SELECT id, CASE WHEN approved_at IS NULL THEN 'infinity'::date "  # noqa: S608
            f"ELSE GREATEST({start_sql}, (approved_at AT TIME ZONE %s)::date) END AS counts_from "
            f"FROM {freelancer}) fr ON fr.id = r.freelancer_id"
        )
        source_params = [timezone.get_current_timezone_name()]
        cur, group = "r.value_date >= fr.counts_from", "r.freelancer_id, fr.counts_from"
    else:
        # No join before the GROUP BY: the same shape as the bare per-freelancer sums.
        source, source_params = f"{receipt} r", []
        cur, group = f"r.value_date >= {start_sql}", "r.freelancer_id"

    # Per receipt only what must be: (amount - retained) x rate is summed exactly and scaled to
    # 1e-8 units once per freelancer; USD is _Converted's very expression (a CASE on whether
    # something was retained), so each year's USD is ONE exact numeric sum, like the bare sums.
    pkr = "(r.amount - r.retained_amount) * r.pkr_rate"
    usd_e8 = (
        "CASE WHEN r.retained_amount = 0 THEN r.usd_amount * 100000000 "
        "ELSE r.usd_amount * (r.amount - r.retained_amount) * 100000000 / r.amount END"
    )
    prev = f"r.value_date < {start_sql}"

    sql = f"""
        SELECT a.freelancer_id, f.status AS freelancer__status,
               f.expires_on AS freelancer__expires_on, a.n, a.cur_usd, a.cur_pkr,
               a.prev_usd, a.prev_pkr
        FROM (
            SELECT r.freelancer_id,
                   COUNT(*) FILTER (WHERE {cur}) AS n,
                   SUM({usd_e8}) FILTER (WHERE {cur}) AS cur_usd,
                   SUM({pkr}) FILTER (WHERE {cur}) * 100000000 AS cur_pkr,
                   SUM({usd_e8}) FILTER (WHERE {prev}) AS prev_usd,
                   SUM({pkr}) FILTER (WHERE {prev}) * 100000000 AS prev_pkr
            FROM {source}
            WHERE r.source = %s AND r.reversed_on IS NULL AND r.freelancer_id IS NOT NULL
              AND r.value_date >= %s AND r.value_date <= %s
              AND r.purpose_code_id = ANY(%s)
            GROUP BY {group}
        ) a JOIN {freelancer} f ON f.id = a.freelancer_id
    """  # noqa: S608 - table names and our own expressions only
    params = [*source_params, Receipt.Source.BANK, previous_start, end, code_ids]
    return sql, params


def proceeds_by_freelancer(
    *, scheme: IncentiveScheme, chunk_size: int = 10_000
) -> Iterator[FreelancerProceeds]:
    """Every freelancer with a counted receipt in the scheme's fiscal year or the year before,
    with both years' converted proceeds (``proceeds_query``), streamed with a server-side cursor
    (PostgreSQL) in chunks, ordered by freelancer id."""
    rows = proceeds_query(scheme=scheme)
    for row in rows.iterator(chunk_size=chunk_size):
        yield FreelancerProceeds(
            freelancer_id=row["freelancer_id"],
            status=row["freelancer__status"],
            expires_on=row["freelancer__expires_on"],
            receipts_counted=row["n"],
            proceeds_usd=round_minor(row["cur_usd"]),
            proceeds_pkr=round_minor(row["cur_pkr"]),
            previous_proceeds_usd=round_minor(row["prev_usd"]),
            previous_proceeds_pkr=round_minor(row["prev_pkr"]),
        )


def converted_usd(receipt: Receipt) -> Decimal:
    """One receipt's converted USD, rounded half up to the cent (for display)."""
    if not receipt.retained_amount:
        return receipt.usd_amount
    value = receipt.usd_amount * (receipt.amount - receipt.retained_amount) / receipt.amount
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def converted_pkr(receipt: Receipt) -> Decimal:
    """One receipt's converted PKR, rounded half up to the paisa (for display)."""
    value = (receipt.amount - receipt.retained_amount) * receipt.pkr_rate
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def counted_receipts_for(*, scheme: IncentiveScheme, freelancer: Freelancer) -> QuerySet[Receipt]:
    """The freelancer's receipts that counted towards the scheme's fiscal year."""
    return (
        scheme_receipts(scheme=scheme)
        .filter(_current_year_q(scheme), freelancer=freelancer)
        .select_related("purpose_code")
        .order_by("value_date", "id")
    )


VISIBLE_TO_FREELANCERS = (
    IncentiveScheme.Status.COMPUTED,
    IncentiveScheme.Status.APPROVED,
    IncentiveScheme.Status.PAID,
)


def freelancer_incentives(*, freelancer: Freelancer) -> list[dict]:
    """For every computed, approved or paid scheme: whether the freelancer qualified, why or why
    not, how much, and the receipts that counted. A handful of queries per scheme."""
    schemes = list(
        IncentiveScheme.objects.filter(status__in=VISIBLE_TO_FREELANCERS).prefetch_related(
            "purpose_codes"
        )
    )
    ids = [s.pk for s in schemes]
    entitlements = {
        e.scheme_id: e for e in Entitlement.objects.filter(freelancer=freelancer, scheme_id__in=ids)
    }
    payouts = {
        p.entitlement_id: p
        for p in IncentivePayout.objects.filter(freelancer=freelancer, scheme_id__in=ids)
    }
    exclusions = {
        x.scheme_id: x for x in Exclusion.objects.filter(freelancer=freelancer, scheme_id__in=ids)
    }
    out = []
    for scheme in schemes:
        entitlement = entitlements.get(scheme.pk)
        exclusion = exclusions.get(scheme.pk)
        payout = payouts.get(entitlement.pk) if entitlement else None
        if entitlement:
            reason = "Qualified: every criterion of the scheme is met."
        elif exclusion:
            reason = exclusion.detail
        else:
            reason = "No counted receipts in this fiscal year or the one before."
        receipts = [
            {
                "reference": r.reference,
                "value_date": r.value_date,
                "amount": r.amount,
                "currency": r.currency,
                "retained_amount": r.retained_amount,
                "purpose_code": r.purpose_code.code,
                "converted_usd": converted_usd(r),
                "converted_pkr": converted_pkr(r),
            }
            for r in counted_receipts_for(scheme=scheme, freelancer=freelancer)
        ]
        out.append(
            {
                "scheme": scheme,
                "provisional": scheme.status == IncentiveScheme.Status.COMPUTED,
                "qualified": entitlement is not None,
                "reason_code": exclusion.reason if exclusion else "",
                "reason": reason,
                "entitlement": entitlement,
                "exclusion": exclusion,
                "payout_status": (
                    "" if payout is None else ("paid" if payout.paid_at else "in disbursement")
                ),
                "receipts": receipts,
            }
        )
    return out


def disbursement_rows(*, batch: PayoutBatch) -> Iterator[tuple[str, str, str, Decimal]]:
    """(registration number, name, IBAN, amount) for each payout of the batch, streamed."""
    qs = (
        IncentivePayout.objects.filter(batch=batch)
        .order_by("freelancer_id")
        .values_list(
            "freelancer__registration_number", "freelancer__full_name", "iban", "amount_pkr"
        )
    )
    yield from qs.iterator(chunk_size=5_000)
