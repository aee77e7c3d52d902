"""Incentive schemes: compute, allocate a fund, approve with four eyes, export and pay.

Rounding rules (all amounts are PKR with two places unless named USD):
- proceeds: summed exactly per freelancer and rounded once, half up, to the paisa/cent
  (payments.selectors_incentives);
- raw amount = basis x rate / 100, rounded half up to the paisa; capped = min(raw, cap);
- fund allocation works in integer paisas: floor of the pro rata share, then the remaining
  paisas one each by the largest remainder (ties: lower freelancer id first).
"""

import datetime
import logging
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from config.celery import enqueue_on_commit
from freelancers.models import Freelancer
from payments.models import (
    Entitlement,
    Exclusion,
    IncentivePayout,
    IncentiveScheme,
    PayoutAccount,
    PayoutBatch,
)
from payments.selectors_incentives import FreelancerProceeds, proceeds_by_freelancer

logger = logging.getLogger(__name__)

CENT = Decimal("0.01")
BATCH_SIZE = 5_000
# work_mem for the compute statements (SET LOCAL): the GROUP BY's sorts and the inserts' sorts.
INCENTIVE_WORK_MEM = "256MB"
# The per-freelancer figures and verdicts between the two statements of ``_assess_in_sql``.
ASSESSED_TABLE = "incentive_assessed"
APPROVE_PERMISSION = "payments.approve_incentive"
MANAGE_PERMISSION = "payments.change_incentivescheme"


NO_PROCEEDS_TEXT = (
    "No converted proceeds counted in the fiscal year (money kept in foreign currency, "
    "or received before approval, does not count)."
)
NO_PREVIOUS_YEAR_TEXT = (
    "No converted proceeds in the previous fiscal year to measure growth against."
)


class IncentiveError(Exception):
    """A request the scheme's state or the rules do not allow; the message says why."""


def _paisa(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- Fund allocation ----------------------------------------------------------------------------


def allocate_fund(*, entitlements: Sequence[int], budget: int) -> list[int]:
    """Awards in integer paisas for ``entitlements`` (paisas, in tie-break order) under ``budget``.

    If the entitlements fit the budget each is awarded in full. Otherwise each award is
    floor(entitlement x budget / total), and the ``budget - sum(floors)`` remaining paisas go one
    each to the largest remainders, ties to the earlier position. Guarantees: the awards add up to
    exactly the budget, no award exceeds its entitlement, and each is within one paisa of its exact
    pro rata share. Pure; O(n log n) time, O(n) integers of memory.
    """
    if budget < 0 or any(e < 0 for e in entitlements):
        raise ValueError("entitlements and budget must be non-negative")
    total = sum(entitlements)
    if total <= budget:
        return list(entitlements)
    awards = [0] * len(entitlements)
    remainders = [0] * len(entitlements)
    for i, e in enumerate(entitlements):
        awards[i], remainders[i] = divmod(e * budget, total)
    left = budget - sum(awards)
    # Python's sort is stable also with reverse=True: equal remainders keep their order.
    for i in sorted(range(len(entitlements)), key=remainders.__getitem__, reverse=True)[:left]:
        awards[i] += 1
    return awards


# --- Eligibility ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assessment:
    """The verdict for one freelancer: ``reason`` empty means eligible."""

    reason: str
    detail: str
    growth_percent: Decimal | None
    basis_pkr: Decimal = Decimal(0)
    raw_amount_pkr: Decimal = Decimal(0)
    capped_amount_pkr: Decimal = Decimal(0)


def assess(*, scheme: IncentiveScheme, row: FreelancerProceeds, as_of: datetime.date) -> Assessment:
    """Apply the scheme's rules, in order, to one freelancer's proceeds. Pure.

    Registration valid on ``as_of`` (approved, not expired) -> converted proceeds in the year ->
    minimum (USD) -> growth over the previous year (USD, when required) -> basis (all, or the
    increase in PKR) -> rate (half up to the paisa) -> cap.
    """
    R = Exclusion.Reason
    growth = None
    if row.previous_proceeds_usd > 0:
        growth = _paisa(
            (row.proceeds_usd - row.previous_proceeds_usd) * 100 / row.previous_proceeds_usd
        )
    if row.status != Freelancer.Status.APPROVED or (row.expires_on and row.expires_on < as_of):
        state = "expired" if row.status == Freelancer.Status.APPROVED else row.status
        return Assessment(R.REGISTRATION_INVALID, f"Registration is {state} on {as_of}.", growth)
    if row.receipts_counted == 0 or row.proceeds_pkr <= 0:
        return Assessment(
            R.NO_PROCEEDS,
            NO_PROCEEDS_TEXT,
            growth,
        )
    if row.proceeds_usd < scheme.min_proceeds_usd:
        return Assessment(
            R.BELOW_MINIMUM,
            f"Converted proceeds USD {row.proceeds_usd:,} are below the minimum "
            f"USD {scheme.min_proceeds_usd:,}.",
            growth,
        )
    required = scheme.growth_required_percent
    if required is not None:
        if row.previous_proceeds_usd <= 0:
            return Assessment(
                R.NO_PREVIOUS_YEAR,
                NO_PREVIOUS_YEAR_TEXT,
                growth,
            )
        # Exact comparison: current >= previous x (1 + required/100).
        if row.proceeds_usd * 100 < row.previous_proceeds_usd * (100 + required):
            return Assessment(
                R.INSUFFICIENT_GROWTH,
                f"Growth of {growth}% is below the required {required.normalize():f}%.",
                growth,
            )
    if scheme.basis == IncentiveScheme.Basis.INCREASE:
        basis = row.proceeds_pkr - row.previous_proceeds_pkr
        if basis <= 0:
            return Assessment(
                R.NO_INCREASE,
                f"Converted proceeds PKR {row.proceeds_pkr:,} did not increase over the previous "
                f"year's PKR {row.previous_proceeds_pkr:,}.",
                growth,
            )
    else:
        basis = row.proceeds_pkr
    raw = _paisa(basis * scheme.rate_percent / 100)
    capped = raw
    if scheme.cap_per_freelancer_pkr is not None:
        capped = min(raw, scheme.cap_per_freelancer_pkr)
    if capped <= 0:
        return Assessment(R.ZERO_AMOUNT, "The amount rounds to zero.", growth, basis, raw, capped)
    return Assessment("", "", growth, basis, raw, capped)


# --- Compute -------------------------------------------------------------------------------------


def scheme_request_compute(*, scheme_id: int, by: AbstractBaseUser) -> IncentiveScheme:
    """Ask for a (re)computation: records who asked and enqueues ``incentive_compute`` after
    commit. The periodic sweep re-enqueues a request whose task never ran. Raises
    IncentiveError once the scheme is approved or paid, PermissionDenied for non-staff."""
    if not (by.is_staff and by.has_perm(MANAGE_PERMISSION)):
        raise PermissionDenied("Computing a scheme needs staff with change permission on schemes.")
    from payments.tasks.incentives import incentive_compute

    with transaction.atomic():
        scheme = IncentiveScheme.objects.select_for_update().get(pk=scheme_id)
        if scheme.is_frozen:
            raise IncentiveError(f"{scheme} is {scheme.status}: its figures are frozen.")
        scheme.compute_requested_at = timezone.now()
        scheme.compute_requested_by = by
        scheme.save(update_fields=["compute_requested_at", "compute_requested_by", "updated_at"])
        enqueue_on_commit(incentive_compute, scheme.pk)
    return scheme


def scheme_compute(
    *, scheme_id: int, by: AbstractBaseUser | None, as_of: datetime.date | None = None
) -> IncentiveScheme:
    """Compute the scheme: delete and re-insert its entitlements and exclusions in ONE
    transaction, holding the scheme row locked (FOR UPDATE), only while it is draft or computed.

    Set-based: one GROUP BY query over the receipts of both fiscal years. On PostgreSQL the
    query and the rules are one statement into a temporary table, the fund allocation and both
    inserts a second one (``_assess_in_sql``); elsewhere the query is streamed, ``assess`` judges
    each row and rows are written in batches. No query is made per freelancer and memory stays
    bounded. Deterministic: the same data on the same ``as_of`` day gives the same rows. ``by``
    becomes ``computed_by`` (four eyes: they cannot approve). Raises IncentiveError if the scheme
    is approved or paid.
    """
    as_of = as_of or timezone.localdate()
    with transaction.atomic():
        scheme = IncentiveScheme.objects.select_for_update().get(pk=scheme_id)
        if scheme.is_frozen:
            raise IncentiveError(f"{scheme} is {scheme.status}: its figures are frozen.")
        # Plain DELETEs: Django's delete() would first load every row to cascade. No payout can
        # point at these rows (payouts exist only once approved; the foreign key would refuse).
        with connection.cursor() as cursor:
            for model in (Entitlement, Exclusion):
                table = connection.ops.quote_name(model._meta.db_table)
                cursor.execute(f"DELETE FROM {table} WHERE scheme_id = %s", [scheme.pk])  # noqa: S608
        budget = scheme.fund_budget_pkr
        if connection.vendor == "postgresql":
            n_eligible, n_excluded, entitled_total, awarded_total = _assess_in_sql(scheme, as_of)
        else:
            eligible, excluded = [], []
            n_eligible = n_excluded = 0
            entitled_total = Decimal(0)
            for row in proceeds_by_freelancer(scheme=scheme):
                verdict = assess(scheme=scheme, row=row, as_of=as_of)
                if verdict.reason:
                    excluded.append(_exclusion(scheme.pk, row, verdict))
                    n_excluded += 1
                else:
                    eligible.append(_entitlement(scheme.pk, row, verdict))
                    n_eligible += 1
                    entitled_total += verdict.capped_amount_pkr
                if len(eligible) >= BATCH_SIZE:
                    _insert_rows(Entitlement, ENTITLEMENT_COLUMNS, eligible)
                    eligible.clear()
                if len(excluded) >= BATCH_SIZE:
                    _insert_rows(Exclusion, EXCLUSION_COLUMNS, excluded)
                    excluded.clear()
            _insert_rows(Entitlement, ENTITLEMENT_COLUMNS, eligible)
            _insert_rows(Exclusion, EXCLUSION_COLUMNS, excluded)
            awarded_total = entitled_total
            if budget is not None and entitled_total > budget:
                awarded_total = _allocate_in_db(scheme, budget)
        scaled = budget is not None and entitled_total > budget
        scheme.status = IncentiveScheme.Status.COMPUTED
        scheme.revision += 1
        scheme.computed_at = timezone.now()
        scheme.computed_by = by
        scheme.compute_requested_at = None
        scheme.compute_error = ""
        scheme.eligible_count = n_eligible
        scheme.excluded_count = n_excluded
        scheme.entitled_total_pkr = entitled_total
        scheme.awarded_total_pkr = awarded_total
        scheme.scaled = scaled
        scheme.save()
    logger.info(
        "incentive scheme %s computed: %s eligible, %s excluded, PKR %s awarded",
        scheme.pk,
        n_eligible,
        n_excluded,
        awarded_total,
    )
    return scheme


ENTITLEMENT_COLUMNS = (
    "scheme_id",
    "freelancer_id",
    "receipts_counted",
    "proceeds_usd",
    "proceeds_pkr",
    "previous_proceeds_usd",
    "previous_proceeds_pkr",
    "growth_percent",
    "basis_pkr",
    "raw_amount_pkr",
    "capped_amount_pkr",
    "awarded_amount_pkr",
)
EXCLUSION_COLUMNS = (
    "scheme_id",
    "freelancer_id",
    "reason",
    "detail",
    "receipts_counted",
    "proceeds_usd",
    "proceeds_pkr",
    "previous_proceeds_usd",
    "growth_percent",
)


def _entitlement(scheme_id: int, row: FreelancerProceeds, v: Assessment) -> tuple:
    return (
        scheme_id,
        row.freelancer_id,
        row.receipts_counted,
        row.proceeds_usd,
        row.proceeds_pkr,
        row.previous_proceeds_usd,
        row.previous_proceeds_pkr,
        v.growth_percent,
        v.basis_pkr,
        v.raw_amount_pkr,
        v.capped_amount_pkr,
        v.capped_amount_pkr,
    )


def _exclusion(scheme_id: int, row: FreelancerProceeds, v: Assessment) -> tuple:
    return (
        scheme_id,
        row.freelancer_id,
        v.reason,
        v.detail[:300],
        row.receipts_counted,
        row.proceeds_usd,
        row.proceeds_pkr,
        row.previous_proceeds_usd,
        v.growth_percent,
    )


def _insert_rows(model, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert a batch of rows: COPY on PostgreSQL (an order of magnitude faster than INSERT for
    a million rows), bulk_create elsewhere."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        q = connection.ops.quote_name
        sql = f"COPY {q(model._meta.db_table)} ({', '.join(map(q, columns))}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
        return
    model.objects.bulk_create([model(**dict(zip(columns, row, strict=True))) for row in rows])


def _money_text(column: str) -> str:
    """SQL rendering a 2-place amount as Python's f"{amount:,}" does (8,224.74)."""
    return f"to_char({column}, 'FM999,999,999,999,999,990.00')"


def _assess_in_sql(
    scheme: IncentiveScheme, as_of: datetime.date
) -> tuple[int, int, Decimal, Decimal]:
    """PostgreSQL: two statements, so no row travels to Python. First the GROUP BY and the rules
    of ``assess`` into a temporary table (``CREATE TEMPORARY TABLE ... AS SELECT``, which
    PostgreSQL may run with parallel workers, as it does the bare per-freelancer sums; a
    statement with data-modifying CTEs never runs in parallel), then the fund allocation and
    both inserts as ONE statement (data-modifying CTEs) reading that table. Same order of rules,
    same rounding (ROUND on numeric is half away from zero, i.e. half up for these positive
    amounts); the allocation is ``allocate_fund`` in SQL: each award is
    div(capped x budget x 100, total) paisas (exact numeric integer division), and the
    ``budget - sum`` leftover paisas go one each to the first rows by (remainder DESC, freelancer
    id), the same tie-break. Tests compare all of it with ``assess``, ``allocate_fund`` and a
    plain Python definition. Returns (eligible, excluded, entitled total, awarded total)."""
    from payments.selectors_incentives import proceeds_sql

    agg_sql, agg_params = proceeds_sql(scheme=scheme)
    required = scheme.growth_required_percent
    minimum = scheme.min_proceeds_usd
    increase = scheme.basis == IncentiveScheme.Basis.INCREASE
    budget = scheme.fund_budget_pkr
    growth_text = "to_char(growth, 'FM999999999999990.00')"
    R = Exclusion.Reason
    state = "CASE WHEN status = 'approved' THEN 'expired' ELSE status END"
    detail = f"""CASE reason
        WHEN '{R.REGISTRATION_INVALID}' THEN 'Registration is ' || {state} || ' on ' || %s || '.'
        WHEN '{R.NO_PROCEEDS}' THEN %s
        WHEN '{R.BELOW_MINIMUM}' THEN 'Converted proceeds USD ' || {_money_text("usd")}
            || ' are below the minimum USD ' || %s || '.'
        WHEN '{R.NO_PREVIOUS_YEAR}' THEN %s
        WHEN '{R.INSUFFICIENT_GROWTH}' THEN 'Growth of ' || {growth_text}
            || '%% is below the required ' || %s || '%%.'
        WHEN '{R.NO_INCREASE}' THEN 'Converted proceeds PKR ' || {_money_text("pkr")}
            || ' did not increase over the previous year''s PKR ' || {_money_text("ppkr")} || '.'
        ELSE 'The amount rounds to zero.' END"""
    detail_params = [
        str(as_of),
        NO_PROCEEDS_TEXT,
        f"{minimum:,}",
        NO_PREVIOUS_YEAR_TEXT,
        f"{required.normalize():f}" if required is not None else "",
    ]
    if budget is None:
        allocation, award, alloc_params = "e AS (SELECT * FROM eligible)", "capped", []
    else:
        # Only when the entitlements exceed the budget are the awards scaled (allocate_fund).
        allocation = """t AS (SELECT eligible.*, SUM(capped) OVER () AS total FROM eligible),
        s AS (SELECT t.*, div(capped * %s * 100, total) AS share,
                          mod(capped * %s * 100, total) AS remainder FROM t),
        e AS (SELECT s.*, %s * 100 - SUM(share) OVER () AS leftover,
                          ROW_NUMBER() OVER (ORDER BY remainder DESC, freelancer_id) AS rank
              FROM s)"""
        award = (
            "CASE WHEN total <= %s THEN capped "
            "ELSE (share + CASE WHEN rank <= leftover THEN 1 ELSE 0 END) / 100 END"
        )
        alloc_params = [budget, budget, budget]
    q = connection.ops.quote_name
    ent, exc = q(Entitlement._meta.db_table), q(Exclusion._meta.db_table)
    assess_sql = f"""
        CREATE TEMPORARY TABLE {ASSESSED_TABLE} ON COMMIT DROP AS
        WITH agg AS ({agg_sql}),
        f AS (
            SELECT freelancer_id, freelancer__status AS status,
                   freelancer__expires_on AS expires_on, n,
                   ROUND(COALESCE(cur_usd, 0) * 0.00000001, 2) AS usd,
                   ROUND(COALESCE(cur_pkr, 0) * 0.00000001, 2) AS pkr,
                   ROUND(COALESCE(prev_usd, 0) * 0.00000001, 2) AS pusd,
                   ROUND(COALESCE(prev_pkr, 0) * 0.00000001, 2) AS ppkr
            FROM agg),
        g AS (
            SELECT f.*,
                   CASE WHEN pusd > 0 THEN ROUND((usd - pusd) * 100 / pusd, 2) END AS growth,
                   CASE WHEN %s THEN pkr - ppkr ELSE pkr END AS basis
            FROM f),
        h AS (SELECT g.*, ROUND(basis * %s / 100, 2) AS raw FROM g),
        i AS (SELECT h.*, LEAST(raw, COALESCE(%s, raw)) AS capped FROM h)
        SELECT i.*,
          CASE
            WHEN status <> 'approved' OR expires_on < %s THEN 'registration_invalid'
            WHEN n = 0 OR pkr <= 0 THEN 'no_proceeds'
            WHEN usd < %s THEN 'below_minimum'
            WHEN %s AND pusd <= 0 THEN 'no_previous_year'
            WHEN %s AND usd * 100 < pusd * (100 + %s) THEN 'insufficient_growth'
            WHEN %s AND basis <= 0 THEN 'no_increase'
            WHEN capped <= 0 THEN 'zero_amount'
            ELSE '' END AS reason
        FROM i
    """  # noqa: S608 - only our own compiled query and placeholders
    assess_params = [
        *agg_params,
        increase,
        scheme.rate_percent,
        scheme.cap_per_freelancer_pkr,
        as_of,
        minimum,
        required is not None,
        required is not None,
        required or 0,
        increase,
    ]
    sql = f"""
        WITH eligible AS (SELECT * FROM {ASSESSED_TABLE} WHERE reason = ''),
        {allocation},
        ins_e AS (
            INSERT INTO {ent} ({", ".join(ENTITLEMENT_COLUMNS)})
            SELECT %s, freelancer_id, n, usd, pkr, pusd, ppkr, growth, basis, raw, capped, {award}
            FROM e ORDER BY freelancer_id
            RETURNING capped_amount_pkr, awarded_amount_pkr),
        ins_x AS (
            INSERT INTO {exc} ({", ".join(EXCLUSION_COLUMNS)})
            SELECT %s, freelancer_id, reason, LEFT({detail}, 300), n, usd, pkr, pusd, growth
            FROM {ASSESSED_TABLE} WHERE reason <> '' ORDER BY freelancer_id
            RETURNING 1)
        SELECT (SELECT COUNT(*) FROM ins_e), (SELECT COUNT(*) FROM ins_x),
               (SELECT COALESCE(SUM(capped_amount_pkr), 0) FROM ins_e),
               (SELECT COALESCE(SUM(awarded_amount_pkr), 0) FROM ins_e)
    """  # noqa: S608 - only our own table names and placeholders
    params = [
        *alloc_params,
        scheme.pk,
        *([budget] if budget is not None else []),
        scheme.pk,
        *detail_params,
    ]
    with connection.cursor() as cursor:
        # Room for the sorts in memory (this transaction only).
        cursor.execute(f"SET LOCAL work_mem = '{INCENTIVE_WORK_MEM}'")
        # A second computation in the same transaction (tests) finds the table still there.
        cursor.execute(f"DROP TABLE IF EXISTS {ASSESSED_TABLE}")
        # Group by sorting, as the planner does for the bare sums: each parallel worker sorts its
        # share of the receipts and folds one freelancer at a time, where a hash table would hold
        # every freelancer's numeric sums at once (about 1.5 kB each: out of the CPU caches at
        # 200,000 freelancers, spilled to disk at 1,000,000). Only ungrouped aggregates follow.
        cursor.execute("SET LOCAL enable_hashagg = off")
        # The GROUP BY keeps the server's JIT setting: over 20M receipts, compiling its
        # per-receipt expressions (~1.5 s) saves more than it costs (the statement took 15.7-16.1 s
        # with JIT against 16.3-18.8 s without, alternated); on small data its cost stays under
        # ``jit_above_cost`` and nothing is compiled. The inserts are slower with it (6.99 and
        # 7.23 s against 6.13 and 6.41 s): off from here on, for this transaction only.
        cursor.execute(assess_sql, assess_params)
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        n_eligible, n_excluded, entitled, awarded = cursor.fetchone()
        cursor.execute(f"DROP TABLE {ASSESSED_TABLE}")
    return n_eligible, n_excluded, Decimal(entitled), Decimal(awarded).quantize(CENT)


def _allocate_in_db(scheme: IncentiveScheme, budget: Decimal) -> Decimal:
    """Scale the scheme's awards to the budget (allocate_fund) and write them back (the path
    without SQL allocation, i.e. not PostgreSQL): through a temporary table filled by COPY and
    one UPDATE ... FROM on PostgreSQL, elsewhere in batches.
    Memory: two arrays of 64-bit integers plus the allocation's integer lists."""
    ids, paisas = array("q"), array("q")
    rows = (
        Entitlement.objects.filter(scheme=scheme)
        .order_by("freelancer_id")
        .values_list("id", "capped_amount_pkr")
    )
    for pk, capped in rows.iterator(chunk_size=20_000):
        ids.append(pk)
        paisas.append(int(capped * 100))
    awards = allocate_fund(entitlements=paisas, budget=int(budget * 100))
    del paisas
    table = connection.ops.quote_name(Entitlement._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("DROP TABLE IF EXISTS incentive_awards")
            cursor.execute(
                "CREATE TEMPORARY TABLE incentive_awards (id bigint, paisas bigint) ON COMMIT DROP"
            )
            with cursor.cursor.copy("COPY incentive_awards (id, paisas) FROM STDIN") as copy:
                for pk, award in zip(ids, awards, strict=True):
                    copy.write_row((pk, award))
            cursor.execute(
                f"UPDATE {table} AS e SET awarded_amount_pkr = a.paisas / 100.0 "  # noqa: S608
                "FROM incentive_awards a WHERE e.id = a.id"
            )
            cursor.execute("DROP TABLE incentive_awards")
        else:
            sql = f"UPDATE {table} SET awarded_amount_pkr = %s WHERE id = %s"  # noqa: S608
            for start in range(0, len(ids), BATCH_SIZE):
                chunk = zip(
                    ids[start : start + BATCH_SIZE], awards[start : start + BATCH_SIZE], strict=True
                )
                cursor.executemany(sql, [(Decimal(a) / 100, pk) for pk, a in chunk])
    return (Decimal(sum(awards)) / 100).quantize(CENT)


def scheme_compute_pending(*, scheme_id: int) -> IncentiveScheme | None:
    """Run a requested computation if it is still pending (what the Celery task calls): safe to
    run twice, the second run finds nothing pending. Records the error on the scheme on failure."""
    scheme = IncentiveScheme.objects.get(pk=scheme_id)
    if scheme.compute_requested_at is None or scheme.is_frozen:
        return None
    try:
        return scheme_compute(scheme_id=scheme_id, by=scheme.compute_requested_by)
    except IncentiveError as exc:
        IncentiveScheme.objects.filter(pk=scheme_id).update(
            compute_error=str(exc), compute_requested_at=None
        )
        return None


def schemes_pending_compute(*, older_than: datetime.timedelta) -> list[int]:
    """Ids of schemes whose computation was requested more than ``older_than`` ago and not done."""
    cutoff = timezone.now() - older_than
    return list(
        IncentiveScheme.objects.filter(
            compute_requested_at__lt=cutoff,
            status__in=[IncentiveScheme.Status.DRAFT, IncentiveScheme.Status.COMPUTED],
        ).values_list("pk", flat=True)
    )


# --- Approval ------------------------------------------------------------------------------------


def scheme_approve(
    *, scheme_id: int, by: AbstractBaseUser, revision: int | None = None
) -> IncentiveScheme:
    """Approve a computed scheme, freezing its figures (four eyes).

    The approver needs ``payments.approve_incentive`` and must not be the person who computed it
    (a computation by nobody named cannot be approved). ``revision``, when given, must still be the
    current computation: a recompute in between invalidates the approval. The claim is a
    conditional UPDATE ... WHERE status = 'computed' AND revision = seen, under a row lock, so of
    two racing approvals exactly one succeeds. Re-checks that the awards add up to no more than
    the budget. Raises PermissionDenied or IncentiveError.
    """
    if not by.has_perm(APPROVE_PERMISSION):
        raise PermissionDenied("Approving a scheme needs the approve_incentive permission.")
    with transaction.atomic():
        scheme = IncentiveScheme.objects.select_for_update().get(pk=scheme_id)
        if scheme.status != IncentiveScheme.Status.COMPUTED:
            raise IncentiveError(f"{scheme} is {scheme.status}; approve a computed one.")
        if scheme.computed_by_id is None:
            raise IncentiveError("Recompute as a named staff member: four eyes need two people.")
        if scheme.computed_by_id == by.pk:
            raise IncentiveError("Four eyes: the person who computed a scheme cannot approve it.")
        if revision is not None and revision != scheme.revision:
            raise IncentiveError("The scheme was recomputed since you looked at it; review again.")
        total = Entitlement.objects.filter(scheme=scheme).aggregate(t=Sum("awarded_amount_pkr"))[
            "t"
        ] or Decimal(0)
        if scheme.fund_budget_pkr is not None and total > scheme.fund_budget_pkr:
            raise IncentiveError(f"Awards PKR {total} exceed the budget {scheme.fund_budget_pkr}.")
        now = timezone.now()
        claimed = IncentiveScheme.objects.filter(
            pk=scheme.pk, status=IncentiveScheme.Status.COMPUTED, revision=scheme.revision
        ).update(status=IncentiveScheme.Status.APPROVED, approved_by=by, approved_at=now)
        if claimed != 1:
            raise IncentiveError(f"{scheme} was approved or recomputed by someone else meanwhile.")
    scheme.refresh_from_db()
    return scheme


# --- Payout --------------------------------------------------------------------------------------


def scheme_export_disbursement(*, scheme_id: int, by: AbstractBaseUser) -> PayoutBatch | None:
    """Claim every unpaid award of an approved scheme whose freelancer has a payout account into a
    new PayoutBatch (the bank disbursement file), with the IBAN of the moment.

    One INSERT ... SELECT under the scheme's row lock; an entitlement is claimed at most once
    (IncentivePayout.entitlement is unique and the SELECT skips claimed ones), so racing exports
    never put an award into two files, and the batch is refused if the scheme's payouts would
    exceed its budget. Returns None when nothing is left to export. Raises IncentiveError,
    PermissionDenied.
    """
    if not by.has_perm(MANAGE_PERMISSION):
        raise PermissionDenied("Exporting payouts needs change permission on schemes.")
    with transaction.atomic():
        scheme = IncentiveScheme.objects.select_for_update().get(pk=scheme_id)
        if scheme.status != IncentiveScheme.Status.APPROVED:
            raise IncentiveError(f"{scheme} is {scheme.status}; only an approved scheme pays out.")
        batch = PayoutBatch.objects.create(scheme=scheme, exported_by=by)
        q = connection.ops.quote_name
        payout, ent, account = (
            q(IncentivePayout._meta.db_table),
            q(Entitlement._meta.db_table),
            q(PayoutAccount._meta.db_table),
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {payout} "  # noqa: S608
                "(entitlement_id, batch_id, scheme_id, freelancer_id, iban, amount_pkr) "
                f"SELECT e.id, %s, e.scheme_id, e.freelancer_id, a.iban, e.awarded_amount_pkr "
                f"FROM {ent} e JOIN {account} a ON a.freelancer_id = e.freelancer_id "
                f"WHERE e.scheme_id = %s AND e.awarded_amount_pkr > 0 AND NOT EXISTS "
                f"(SELECT 1 FROM {payout} p WHERE p.entitlement_id = e.id)",
                [batch.pk, scheme.pk],
            )
            count = cursor.rowcount
        if not count:
            batch.delete()
            return None
        paid_out = IncentivePayout.objects.filter(scheme=scheme).aggregate(t=Sum("amount_pkr"))["t"]
        if scheme.fund_budget_pkr is not None and paid_out > scheme.fund_budget_pkr:
            raise IncentiveError(f"Payouts PKR {paid_out} would exceed the budget: not exported.")
        batch.payouts_count = count
        batch.total_pkr = IncentivePayout.objects.filter(batch=batch).aggregate(
            t=Sum("amount_pkr")
        )["t"]
        batch.save(update_fields=["payouts_count", "total_pkr"])
    return batch


def batch_mark_paid(*, batch_id: int, by: AbstractBaseUser) -> PayoutBatch:
    """Record that the bank paid a disbursement file: the batch and its payouts become paid, and
    the scheme becomes paid once every award has a paid payout. Claimed by a conditional UPDATE
    ... WHERE status = 'exported': marking the same batch twice raises IncentiveError."""
    if not by.has_perm(MANAGE_PERMISSION):
        raise PermissionDenied("Marking payouts paid needs change permission on schemes.")
    now = timezone.now()
    with transaction.atomic():
        batch = PayoutBatch.objects.select_for_update().get(pk=batch_id)
        claimed = PayoutBatch.objects.filter(
            pk=batch.pk, status=PayoutBatch.Status.EXPORTED
        ).update(status=PayoutBatch.Status.PAID, paid_at=now, paid_by=by)
        if claimed != 1:
            raise IncentiveError(f"{batch} is already marked paid.")
        IncentivePayout.objects.filter(batch=batch, paid_at__isnull=True).update(paid_at=now)
        unpaid = (
            Entitlement.objects.filter(scheme_id=batch.scheme_id, awarded_amount_pkr__gt=0)
            .exclude(payout__paid_at__isnull=False)
            .exists()
        )
        if not unpaid:
            IncentiveScheme.objects.filter(
                pk=batch.scheme_id, status=IncentiveScheme.Status.APPROVED
            ).update(status=IncentiveScheme.Status.PAID, paid_at=now)
    batch.refresh_from_db()
    return batch


def payout_account_set(*, freelancer: Freelancer, iban: str, account_title: str) -> PayoutAccount:
    """Create or replace the freelancer's PKR payout account (validated PK IBAN). Payouts already
    exported keep the IBAN they were exported with. Raises ValidationError naming the field."""
    from stdnum import iban as iban_module

    account = PayoutAccount.objects.filter(freelancer=freelancer).first() or PayoutAccount(
        freelancer=freelancer
    )
    account.iban = iban_module.compact(iban or "")
    account.account_title = (account_title or "").strip()
    account.full_clean()
    account.save()
    return account
