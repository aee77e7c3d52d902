"""Incentives benchmark: compute_incentives against the bare SQL, with peak memory.

    .venv/bin/python -m bench.incentives [--size small|medium|full]

Loads (once; reused while the sizes match) freelancers and receipts over two fiscal years
(2024-25 and 2025-26) with COPY. Then, in the same run:

1. times the bare SQL that computes the same per-freelancer sums (converted USD and PKR of the
   counted receipts, this fiscal year and the one before), materialised server-side;
2. creates a capped cash-reward scheme for 2025-26 with the growth rule (minimum USD 10,000,
   growth >= 10%, cap per freelancer, a fund budget smaller than the entitlements so awards are
   scaled) and times ``compute_incentives`` in a child process (target: within 2x of the bare SQL),
   reading the child's peak RSS (target: under 500 MB);
3. checks every entitlement's proceeds equal the bare SQL's to the cent/paisa, every freelancer
   with receipts is either entitled or excluded (never both), and awards add up to the budget.
"""

from __future__ import annotations

import sys
from decimal import Decimal

from bench import common, datagen
from bench.child import run_command

DB_BASE = "portal_bench_incentives"
DB = common.dataset_db(DB_BASE, "small")  # set per --size in main()
FIRST_DAY = "2024-07-01"
LAST_DAY = "2026-06-30"
FISCAL_YEAR = "2025-26"
SCHEME_NAME = "Bench cash reward 2025-26"

# Converted proceeds as the incentives selector defines them (payments/selectors_incentives.py):
# PKR = (amount - retained) * pkr_rate; USD = usd_amount * (amount - retained) / amount; summed
# per freelancer and rounded once to 2 places, half up.
BARE_SQL = """
CREATE TEMP TABLE bench_bare_proceeds AS
SELECT r.freelancer_id,
       COUNT(*) FILTER (WHERE r.value_date >= %(start)s) AS receipts,
       ROUND(COALESCE(SUM(CASE WHEN r.retained_amount = 0 THEN r.usd_amount
                 ELSE r.usd_amount * (r.amount - r.retained_amount) / r.amount END)
             FILTER (WHERE r.value_date >= %(start)s), 0), 2) AS usd,
       ROUND(COALESCE(SUM((r.amount - r.retained_amount) * r.pkr_rate)
             FILTER (WHERE r.value_date >= %(start)s), 0), 2) AS pkr,
       ROUND(COALESCE(SUM(CASE WHEN r.retained_amount = 0 THEN r.usd_amount
                 ELSE r.usd_amount * (r.amount - r.retained_amount) / r.amount END)
             FILTER (WHERE r.value_date < %(start)s), 0), 2) AS prev_usd,
       ROUND(COALESCE(SUM((r.amount - r.retained_amount) * r.pkr_rate)
             FILTER (WHERE r.value_date < %(start)s), 0), 2) AS prev_pkr
FROM payments_receipt r
JOIN payments_purposecode p ON p.id = r.purpose_code_id
WHERE r.source = 'bank' AND r.reversed_on IS NULL AND p.is_it
  AND r.freelancer_id IS NOT NULL
  AND r.value_date >= %(prev_start)s AND r.value_date <= %(end)s
GROUP BY r.freelancer_id
"""


def create_scheme(budget_pkr: Decimal):
    """A capped cash-reward scheme with the growth rule (replaces an earlier bench scheme)."""
    from payments.models import IncentiveScheme

    IncentiveScheme.objects.filter(name=SCHEME_NAME).delete()
    return IncentiveScheme.objects.create(
        name=SCHEME_NAME,
        kind=IncentiveScheme.Kind.CASH_REWARD,
        fiscal_year=FISCAL_YEAR,
        rate_percent=Decimal("5"),
        basis=IncentiveScheme.Basis.ALL,
        min_proceeds_usd=Decimal("10000"),
        growth_required_percent=Decimal("10"),
        cap_per_freelancer_pkr=Decimal("500000"),
        fund_budget_pkr=budget_pkr,
    )


def main(argv: list[str] | None = None) -> int:
    parser = common.base_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    size = common.size_of(args, "incentive_receipts")
    report = common.make_report("incentives", args)
    global DB
    DB = common.dataset_db(DB_BASE, args.size)
    common.setup_django(DB)
    ds = datagen.Dataset(
        freelancers=size["freelancers"],
        receipts=size["incentive_receipts"],
        first_day=FIRST_DAY,
        last_day=LAST_DAY,
    )
    datagen.ensure_dataset(DB, ds, reload=args.reload)
    env = common.bench_env(DB)
    report.add("receipts / freelancers", f"{ds.receipts:,} / {ds.freelancers:,}")
    params = {"start": "2025-07-01", "prev_start": FIRST_DAY, "end": LAST_DAY}

    with common.admin_connect(DB) as conn:
        timings = []
        for _ in range(2):  # the first run warms the cache; both are reported as the minimum
            conn.execute("DROP TABLE IF EXISTS bench_bare_proceeds")
            with common.timer() as t:
                conn.execute(BARE_SQL, params)
            timings.append(t["s"])
        t_bare = min(timings)
        assessed = conn.execute("SELECT count(*) FROM bench_bare_proceeds").fetchone()[0]
        report.add("bare SQL per-freelancer sums", common.fmt_s(t_bare))

        # A fund smaller than the entitlements, so awards are scaled pro rata: half of an
        # over-estimate (every freelancer meeting the money rules, whatever their registration).
        estimate = conn.execute(
            "SELECT coalesce(sum(least(pkr * 0.05, 500000)), 0) FROM bench_bare_proceeds"
            " WHERE usd >= 10000 AND prev_usd > 0 AND usd >= prev_usd * 1.10"
        ).fetchone()[0]
        scheme = create_scheme(max(Decimal("1"), (estimate / 2).quantize(Decimal("1"))))
        # The previous run's ~1M rows, just deleted, are dead tuples that the inserts' unique
        # checks would visit where autovacuum is off (some of these machines): clear them, as
        # autovacuum would have by the time a scheme is computed again.
        conn.execute("VACUUM ANALYZE payments_entitlement, payments_exclusion")
        result = run_command(["compute_incentives", str(scheme.pk)], env, "incentives-compute")
        t_cmd = result["seconds"]
        rss = max(result["maxrss_mb"], result["wait4_maxrss_mb"])
        report.add(
            "compute_incentives (capped, growth rule)",
            f"{common.fmt_s(t_cmd)} = {t_cmd / t_bare:.2f}x bare",
            "<= 2x bare",
            t_cmd <= 2 * t_bare,
        )
        report.add("compute_incentives peak RSS", f"{rss:.0f} MB", "< 500 MB", rss < 500)
        scheme.refresh_from_db()
        report.add(
            "eligible / excluded / assessed",
            f"{scheme.eligible_count:,} / {scheme.excluded_count:,} / {assessed:,}",
        )
        report.add(
            "fund: budget / entitled / awarded (PKR)",
            f"{scheme.fund_budget_pkr:,} / {scheme.entitled_total_pkr:,} / "
            f"{scheme.awarded_total_pkr:,}{' (scaled)' if scheme.scaled else ''}",
        )
        check_figures(report, conn, scheme)
    return common.finish(report, args.json)


def check_figures(report: common.Report, conn, scheme) -> None:
    sid = scheme.pk
    # The compute just replaced ~1M rows. Where autovacuum is off (some of these machines), the
    # planner would plan the checks below on the previous run's statistics (no rows for this
    # scheme) and join the exclusions in a nested loop: minutes instead of seconds.
    conn.execute("ANALYZE payments_entitlement, payments_exclusion")
    wrong = conn.execute(
        """
        SELECT count(*) FROM payments_entitlement e
        LEFT JOIN bench_bare_proceeds b ON b.freelancer_id = e.freelancer_id
        WHERE e.scheme_id = %s AND (b.freelancer_id IS NULL OR e.proceeds_usd <> b.usd
              OR e.proceeds_pkr <> b.pkr OR e.previous_proceeds_usd <> b.prev_usd
              OR e.previous_proceeds_pkr <> b.prev_pkr OR e.receipts_counted <> b.receipts)
        """,
        [sid],
    ).fetchone()[0]
    report.check(wrong == 0, f"{wrong} entitlements whose proceeds differ from the bare SQL")
    both, neither, extra = conn.execute(
        """
        SELECT
          (SELECT count(*) FROM payments_entitlement e JOIN payments_exclusion x
             ON x.scheme_id = e.scheme_id AND x.freelancer_id = e.freelancer_id
             WHERE e.scheme_id = %(s)s),
          (SELECT count(*) FROM bench_bare_proceeds b
             WHERE NOT EXISTS (SELECT 1 FROM payments_entitlement e
                               WHERE e.scheme_id = %(s)s AND e.freelancer_id = b.freelancer_id)
               AND NOT EXISTS (SELECT 1 FROM payments_exclusion x
                               WHERE x.scheme_id = %(s)s AND x.freelancer_id = b.freelancer_id)),
          (SELECT count(*) FROM payments_entitlement e WHERE e.scheme_id = %(s)s
             AND NOT EXISTS (SELECT 1 FROM bench_bare_proceeds b
                             WHERE b.freelancer_id = e.freelancer_id))
        """,
        {"s": sid},
    ).fetchone()
    report.check(both == 0, f"{both} freelancers both entitled and excluded")
    report.check(neither == 0, f"{neither} freelancers with receipts neither entitled nor excluded")
    report.check(extra == 0, f"{extra} entitlements for freelancers without counted receipts")
    awarded, over = conn.execute(
        "SELECT coalesce(sum(awarded_amount_pkr), 0),"
        " count(*) FILTER (WHERE awarded_amount_pkr > capped_amount_pkr)"
        " FROM payments_entitlement WHERE scheme_id = %s",
        [sid],
    ).fetchone()
    if scheme.scaled:
        report.check(
            awarded == scheme.fund_budget_pkr,
            f"awards add up to {awarded}, budget {scheme.fund_budget_pkr}",
        )
    report.check(over == 0, f"{over} awards above their entitlement")
    report.add(
        "entitlement figures = bare SQL",
        "yes" if wrong == 0 else f"{wrong} differ",
        "exact",
        wrong == 0,
    )


if __name__ == "__main__":
    sys.exit(main())
