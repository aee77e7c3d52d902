"""Incentives at scale: generate N freelancers and 20 receipts each over two fiscal years
(deterministic, all in SQL), then time the bare per-freelancer sums and ``scheme_compute`` for a
capped cash reward with the growth rule, in the same run, and report medians and peak RSS.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal_incperf \
        .venv/bin/python bench/incentives_scale.py --freelancers 200000 --generate --runs 3

Exits non-zero if the stored entitlements' proceeds differ from the bare sums.
"""

import argparse
import os
import resource
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402

from payments.models import IncentiveScheme, PurposeCode  # noqa: E402
from payments.services.incentives import INCENTIVE_WORK_MEM, scheme_compute  # noqa: E402

FY = "2024-25"
SCHEME = "Bench cash reward 2024-25"

GENERATE = """
SET LOCAL session_replication_role = replica;
DELETE FROM payments_entitlement; DELETE FROM payments_exclusion;
DELETE FROM payments_receipt; DELETE FROM freelancers_freelancer;
DELETE FROM auth_user WHERE username LIKE 'bench%%';
INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
                       is_staff, is_active, date_joined)
SELECT '!', false, 'bench' || g, '', '', '', false, true, now() FROM generate_series(1, %(n)s) g;
INSERT INTO freelancers_freelancer (id, full_name, mobile, address, city, province, status,
    approved_at, expires_on, created_at, updated_at, user_id, is_renewal, review_round)
SELECT g, 'Bench ' || g, '', '', '', 'punjab',
       CASE WHEN g %% 50 = 0 THEN 'rejected' ELSE 'approved' END,
       timestamp '2022-01-01' + ((g::bigint * 7919) %% 1000) * interval '1 day',
       CASE WHEN g %% 40 = 0 THEN date '2025-01-01' ELSE date '2028-01-01' END,
       now(), now(), u.id, false, 0
FROM generate_series(1, %(n)s) g JOIN auth_user u ON u.username = 'bench' || g;
INSERT INTO payments_receipt (source, reference, iban, amount, currency, usd_amount, pkr_rate,
    value_date, retained_amount, tax_withheld_pkr, remitter_name, remitter_country,
    reversal_reason, created_at, freelancer_id, purpose_code_id, reversed_on)
SELECT CASE WHEN r %% 97 = 0 THEN 'stripe' ELSE 'bank' END, 'B' || r, '',
       a.amt, 'USD', a.amt, 278.5 + (r %% 1000) / 1000.0,
       date '2023-07-01' + ((r * 48271) %% 731)::int,
       CASE WHEN r %% 10 = 0 THEN round(a.amt / 4, 2) ELSE 0 END, 0, '', '', '', now(),
       1 + (r %% %(n)s), 1 + (r %% %(codes)s),
       CASE WHEN r %% 211 = 0 THEN date '2025-07-01' END
FROM generate_series(1::bigint, %(n)s * 20) r,
     LATERAL (SELECT round((50 + ((r * 2654435761) %% 250000) / 100.0)
                           * (1 + ((r %% %(n)s) %% 7)) / 2, 2) AS amt) a;
"""

BARE = """
SELECT r.freelancer_id,
       SUM((r.amount - r.retained_amount) * r.pkr_rate) FILTER (WHERE r.value_date >= %(start)s),
       SUM((r.amount - r.retained_amount) * r.pkr_rate) FILTER (WHERE r.value_date < %(start)s)
FROM payments_receipt r JOIN payments_purposecode c ON c.id = r.purpose_code_id
WHERE r.source = 'bank' AND r.reversed_on IS NULL AND c.is_it
  AND r.value_date BETWEEN %(prev)s AND %(end)s AND r.freelancer_id IS NOT NULL
GROUP BY r.freelancer_id
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--freelancers", type=int, default=200_000)
    parser.add_argument("--generate", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--approved-before",
        action="store_true",
        help="count receipts only from the day of approval (off by default, as in the model)",
    )
    args = parser.parse_args()
    assert connection.vendor == "postgresql", "run against PostgreSQL (DATABASE_URL)"
    codes = list(PurposeCode.objects.filter(is_it=True).values_list("pk", flat=True))
    if args.generate:
        t = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute(GENERATE, {"n": args.freelancers, "codes": len(codes)})
            cur.execute("COMMIT")
            cur.execute("VACUUM ANALYZE payments_receipt")
            cur.execute("VACUUM ANALYZE freelancers_freelancer")
        print(f"generated in {time.perf_counter() - t:.1f} s")
    scheme, _ = IncentiveScheme.objects.update_or_create(
        name=SCHEME,
        defaults=dict(
            kind="cash_reward",
            fiscal_year=FY,
            rate_percent=Decimal("2"),
            basis="all",
            min_proceeds_usd=Decimal("10000"),
            growth_required_percent=Decimal("10"),
            cap_per_freelancer_pkr=Decimal("150000"),
            fund_budget_pkr=Decimal("1000000000"),
            require_approved_before_receipt=args.approved_before,
            status="draft",
        ),
    )
    scheme.purpose_codes.set(codes)
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM payments_receipt")
        n_receipts = cur.fetchone()[0]
    print(
        f"freelancers {args.freelancers:,} receipts {n_receipts:,} cpus {os.cpu_count()} "
        f"approved-before rule {args.approved_before}"
    )
    bare, tuned, comp = [], [], []
    bare_sql = "SELECT count(*), sum(c), sum(p) FROM (" + BARE + ") b(f, c, p)"
    dates = {"start": "2024-07-01", "prev": "2023-07-01", "end": "2025-06-30"}
    for _ in range(args.runs):
        # The bare sums, aggregated over the GROUP BY so that no row travels to Python (neither
        # does compute): with the server's defaults, then with compute's SET LOCALs.
        t = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute(bare_sql, dates)
            cur.fetchall()
        bare.append(time.perf_counter() - t)
        t = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL jit = off")
            cur.execute(f"SET LOCAL work_mem = '{INCENTIVE_WORK_MEM}'")
            cur.execute(bare_sql, dates)
            cur.fetchall()
        tuned.append(time.perf_counter() - t)
        t = time.perf_counter()
        scheme = scheme_compute(scheme_id=scheme.pk, by=None)
        comp.append(time.perf_counter() - t)
        print(
            f"bare {bare[-1]:.2f} s  bare (same settings) {tuned[-1]:.2f} s  "
            f"compute {comp[-1]:.2f} s  ({comp[-1] / bare[-1]:.2f}x, {comp[-1] / tuned[-1]:.2f}x)"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"eligible {scheme.eligible_count:,} excluded {scheme.excluded_count:,} "
        f"entitled {scheme.entitled_total_pkr:,} awarded {scheme.awarded_total_pkr:,}"
    )
    mb, mt, mc = (statistics.median(x) for x in (bare, tuned, comp))
    print(
        f"median bare {mb:.2f} s  bare (same settings) {mt:.2f} s  compute {mc:.2f} s  "
        f"ratio {mc / mb:.2f}x ({mc / mt:.2f}x)  peak RSS {peak:.0f} MB"
    )
    # Check: every entitlement's proceeds in the year equal the bare query's rounded sum.
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM payments_entitlement e JOIN (" + BARE + ") b(fid, cur, prev) "
            "ON b.fid = e.freelancer_id WHERE e.scheme_id = %(s)s AND "
            "e.previous_proceeds_pkr <> round(b.prev, 2)",
            {"start": "2024-07-01", "prev": "2023-07-01", "end": "2025-06-30", "s": scheme.pk},
        )
        wrong = cur.fetchone()[0]
    budget = scheme.fund_budget_pkr
    if (
        wrong
        or (scheme.scaled and scheme.awarded_total_pkr != budget)
        or (scheme.awarded_total_pkr > budget)
    ):
        sys.exit(f"WRONG: {wrong} entitlements differ from the bare sums or the fund is not spent")


if __name__ == "__main__":
    main()
