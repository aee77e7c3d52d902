"""Statistics benchmark: full rebuild and incremental update against the bare SQL GROUP BY.

    .venv/bin/python -m bench.statistics [--size small|medium|full] [--receipts N]

Loads (once; reused while the sizes match) receipts over 36 months (2023-07-01 .. 2026-06-29) with
COPY, removes any receipt recorded on the set since (``bench.freshness --on-statistics-data``
records its load there), then in the same run:

1. times the bare SQL GROUP BY that computes the monthly totals (and, for information, the bare
   queries of every breakdown the rebuild stores);
2. times ``aggregate_statistics --full`` in a child process, twice, and takes the faster run, as
   it takes the faster of two runs of the bare query (target: within 1.5x of the bare query);
3. checks the published figures (``/api/v1/statistics/monthly/``, also ``group_by=country``)
   equal the bare query's to the cent, receipt for receipt;
4. times the pandas peer (``read_sql`` + ``groupby``) over the same receipts and checks its totals
   (target: the full rebuild at least 3x faster);
5. adds one day of receipts (2026-06-30, the size of an average day), tells the portal through
   ``payments.signals.receipts_changed`` in the same transaction, naming the receipts added, as
   the receipt service does for each receipt it records, times ``aggregate_statistics``
   (target: under 2% of the full rebuild) and checks the figures again; then removes that day
   and vacuums the tables it touched, so the next run starts from the data set as loaded. It does
   this ``--day-runs`` times (3) and, as for the rebuild, the fastest run is the verdict.

Exit 1 when a figure is wrong; exit 2 when a target is missed and targets are enforced.
"""

from __future__ import annotations

import datetime
import sys
from decimal import Decimal

from bench import common, datagen, peers
from bench.child import run_command

DB_BASE = "portal_bench_stats"
DB = common.dataset_db(DB_BASE, "small")  # set per --size in main()
FIRST_DAY = "2023-07-01"
LAST_DAY = "2026-06-29"
ADDED_DAY = datetime.date(2026, 6, 30)
# The months compared: those of the data set, widened to every month that holds receipts (a
# freshness run on this data set adds some to the current month).
MONTHS = {"from": "2023-07", "to": "2026-06"}

COUNTED = """
    FROM payments_receipt r
    JOIN payments_purposecode p ON p.id = r.purpose_code_id
    WHERE r.source = 'bank' AND r.reversed_on IS NULL AND p.is_it
"""
BARE_MONTHLY = f"""
    SELECT to_char(r.value_date, 'YYYY-MM') AS month, SUM(r.usd_amount), COUNT(*),
           COUNT(DISTINCT r.freelancer_id)
    {COUNTED}
    GROUP BY 1 ORDER BY 1
"""
BARE_BREAKDOWNS = {
    "category": f"""
        SELECT to_char(r.value_date, 'YYYY-MM'), p.category, SUM(r.usd_amount), COUNT(*),
               COUNT(DISTINCT r.freelancer_id)
        {COUNTED} GROUP BY 1, 2 ORDER BY 1, 2""",
    "country": f"""
        SELECT to_char(r.value_date, 'YYYY-MM'), r.remitter_country, SUM(r.usd_amount), COUNT(*),
               COUNT(DISTINCT r.freelancer_id)
        {COUNTED} GROUP BY 1, 2 ORDER BY 1, 2""",
    "province": """
        SELECT to_char(r.value_date, 'YYYY-MM'), coalesce(NULLIF(f.province, ''), 'unknown'),
               SUM(r.usd_amount), COUNT(*), COUNT(DISTINCT r.freelancer_id)
        FROM payments_receipt r
        JOIN payments_purposecode p ON p.id = r.purpose_code_id
        LEFT JOIN freelancers_freelancer f ON f.id = r.freelancer_id
        WHERE r.source = 'bank' AND r.reversed_on IS NULL AND p.is_it
        GROUP BY 1, 2 ORDER BY 1, 2""",
}


# Every monthly breakdown in ONE scan (what a single-pass rebuild could cost), for information.
BARE_ONE_PASS = """
    SELECT to_char(r.value_date, 'YYYY-MM'), p.category, r.remitter_country,
           coalesce(NULLIF(f.province, ''), 'unknown'),
           SUM(r.usd_amount), COUNT(*), COUNT(DISTINCT r.freelancer_id)
    FROM payments_receipt r
    JOIN payments_purposecode p ON p.id = r.purpose_code_id
    LEFT JOIN freelancers_freelancer f ON f.id = r.freelancer_id
    WHERE r.source = 'bank' AND r.reversed_on IS NULL AND p.is_it
    GROUP BY GROUPING SETS ((1), (1, 2), (1, 3), (1, 4))
"""


def bare_monthly(conn) -> tuple[float, dict[str, tuple[Decimal, int, int]]]:
    with common.timer() as t:
        rows = conn.execute(BARE_MONTHLY).fetchall()
    return t["s"], {m: (total, n, f) for m, total, n, f in rows}


def bare_breakdowns(conn) -> tuple[float, dict[str, list[tuple]]]:
    out = {}
    with common.timer() as t:
        for name, sql in BARE_BREAKDOWNS.items():
            out[name] = conn.execute(sql).fetchall()
    return t["s"], out


def published_monthly(group_by: str | None = None) -> list[dict]:
    """The figures as the public API publishes them (in-process test client, no cache)."""
    from django.test import Client

    params = dict(MONTHS)
    if group_by:
        params["group_by"] = group_by
    response = Client().get("/api/v1/statistics/monthly/", params)
    if response.status_code != 200:
        raise RuntimeError(
            f"statistics API answered {response.status_code}: {response.content[:300]!r}"
        )
    return response.json()["results"]


def check_monthly(report: common.Report, bare: dict, stage: str, *, add_row: bool = True) -> None:
    """Exit 1 unless every published month equals the bare SQL's; ``add_row``: report how many
    months were checked."""
    published = published_monthly()
    seen = {}
    for row in published:
        seen[row["month"]] = (Decimal(row["total_usd"]), row["receipts"], row["freelancers"])
    months = sorted(set(bare) | {m for m, v in seen.items() if v[1]})
    wrong = []
    for month in months:
        expected = bare.get(month, (Decimal("0.00"), 0, 0))
        got = seen.get(month)
        if got != expected:
            wrong.append(f"{month}: published {got}, bare SQL {expected}")
    report.check(
        not wrong,
        f"{stage}: published monthly figures differ from the bare SQL: " + "; ".join(wrong[:5]),
    )
    if add_row:
        total = sum((v[0] for v in bare.values()), Decimal("0"))
        report.add(
            f"{stage}: months checked to the cent", f"{len(months)} (USD {total:,})", "", None
        )


def check_breakdown(
    report: common.Report, bare_rows: list[tuple], group_by: str, stage: str
) -> None:
    published = published_monthly(group_by)
    got = {(r["month"], r[group_by]): (Decimal(r["total_usd"]), r["receipts"]) for r in published}
    expected = {(m, g): (total, n) for m, g, total, n, _ in bare_rows}
    got = {k: v for k, v in got.items() if v[1]}
    diff = sorted(set(got.items()) ^ set(expected.items()))[:5]
    report.check(not diff, f"{stage}: group_by={group_by} differs from the bare SQL: {diff}")


def add_day(conn, ds: datagen.Dataset, count: int) -> None:
    """COPY one day of receipts with ids after the data set's and tell the portal, in the same
    transaction, as the receipt service does for each receipt it records (``receipts_changed``
    naming the receipts added). ``restore_dataset`` removes them."""
    from django.db import connection, transaction

    from payments.models import Receipt
    from payments.signals import receipts_changed

    bank_ids, it_codes, non_it = datagen.reference_ids(conn)
    day = datagen.Dataset(
        freelancers=ds.freelancers,
        receipts=count,
        first_day=ADDED_DAY.isoformat(),
        last_day=ADDED_DAY.isoformat(),
        seed=ds.seed + 1,
    )
    start = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM payments_receipt").fetchone()[0]
    factory = datagen.ReceiptFactory(day, bank_ids, it_codes, non_it)
    template = datagen.RowTemplate(Receipt, datagen.RECEIPT_COLUMNS)
    with transaction.atomic():
        connection.ensure_connection()
        datagen.copy_rows(
            connection.connection,
            template,
            datagen.RECEIPT_COLUMNS,
            factory.rows(start, start + count),
        )
        receipts_changed.send(
            sender=Receipt, months={ADDED_DAY.replace(day=1)}, added=range(start, start + count)
        )
    conn.execute(
        "SELECT setval(pg_get_serial_sequence('payments_receipt', 'id'),"
        " (SELECT max(id) FROM payments_receipt))"
    )


def notify_changed(months: set[datetime.date]) -> None:
    """Tell the portal which months changed, exactly as the receipt service does."""
    from django.db import transaction

    from payments.models import Receipt
    from payments.signals import receipts_changed

    with transaction.atomic():
        receipts_changed.send(sender=Receipt, months=months)


def flush_redis() -> None:
    """Drop the tasks the signal queued (no worker runs here); only our own Redis database."""
    if common.REDIS_URL:
        import redis

        redis.Redis.from_url(common.REDIS_URL).flushdb()


def restore_dataset(conn, env: dict[str, str], ds: datagen.Dataset) -> int:
    """Delete every receipt after the data set's own (ids 1..receipts: a day ``add_day`` added,
    receipts the freshness benchmark recorded on this set, an interrupted run's), recompute
    their months and vacuum: the data set as loaded. Returns how many receipts it deleted."""
    deleted, months = conn.execute(
        "WITH d AS (DELETE FROM payments_receipt WHERE id > %s RETURNING value_date)"
        " SELECT count(*), array_agg(DISTINCT date_trunc('month', value_date)::date) FROM d",
        [ds.receipts],
    ).fetchone()
    if not deleted:
        return 0
    notify_changed(set(months))
    run_command(["aggregate_statistics"], env, "statistics-restore")
    # Without this (autovacuum may be off, as on the machines measured) every run leaves the
    # removed receipts' dead index entries for the same freelancers, which the next run's update
    # has to step over.
    for table in ("payments_receipt", "registry_statisticsstalemark"):
        conn.execute(f"VACUUM (INDEX_CLEANUP ON) {table}")
    return deleted


def time_days(
    conn, ds: datagen.Dataset, env: dict[str, str], report: common.Report, t_full: float, runs: int
) -> None:
    """``runs`` times: add one day, time ``aggregate_statistics``, check the figures to the cent,
    remove the day. The verdict takes the fastest run, as the rebuild's does (the same code's day
    varied by 220-340 ms from one run to the next on the 2-core machines measured); every run's
    figures must be right."""
    day_count = max(1, round(ds.receipts / len(ds.days)))
    times = []
    for i in range(runs):
        add_day(conn, ds, day_count)
        try:
            times.append(
                run_command(["aggregate_statistics"], env, f"statistics-day-{i}")["seconds"]
            )
            _, bare_after = bare_monthly(conn)
            check_monthly(report, bare_after, "incremental", add_row=i == runs - 1)
        finally:
            restore_dataset(conn, env, ds)
    best, runs_text = min(times), ", ".join(common.fmt_s(t) for t in times)
    report.add(
        f"incremental after one day ({day_count:,} receipts)",
        f"{common.fmt_s(best)} = {100 * best / t_full:.2f}% of full (best of {runs_text};"
        f" median {common.fmt_s(common.median(times))})",
        "< 2% of full",
        best < 0.02 * t_full,
    )


def main(argv: list[str] | None = None) -> int:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--no-peer", action="store_true", help="skip the pandas peer")
    parser.add_argument(
        "--no-incremental", action="store_true", help="skip the one-day incremental step"
    )
    parser.add_argument(
        "--day-runs",
        type=int,
        default=3,
        help="how many times to add, time and remove the day (the verdict takes the fastest)",
    )
    parser.add_argument(
        "--corrupt-after-rebuild",
        action="store_true",
        help="self-test: change one receipt behind the portal's back after the rebuild (and undo"
        " it at the end), so the figure checks must fail with exit 1",
    )
    args = parser.parse_args(argv)
    if args.day_runs < 1:
        parser.error("--day-runs must be at least 1")
    size = common.size_of(args, "stats_receipts")
    report = common.make_report("statistics", args)
    global DB
    DB = common.dataset_db(DB_BASE, args.size)
    common.setup_django(DB)
    ds = datagen.Dataset(
        freelancers=size["freelancers"],
        receipts=size["stats_receipts"],
        first_day=FIRST_DAY,
        last_day=LAST_DAY,
    )
    datagen.ensure_dataset(DB, ds, reload=args.reload)
    env = common.bench_env(DB)
    report.add("receipts / freelancers", f"{ds.receipts:,} / {ds.freelancers:,}")

    with common.admin_connect(DB) as conn:
        extra = restore_dataset(conn, env, ds)
        if extra:
            report.notes.append(
                f"removed {extra:,} receipts recorded after the data set was loaded (by the"
                " freshness benchmark or an interrupted run) and recomputed their months"
            )
        flush_redis()
        bare_monthly(conn)  # warm the cache: every timing below reads the same warm pages
        t_bare, bare = bare_monthly(conn)
        t_all, breakdowns = bare_breakdowns(conn)
        with common.timer() as t_one:
            conn.execute(BARE_ONE_PASS).fetchall()

        # Best of two runs, as for the bare query below (one run alone varied by +-8% here).
        runs = [
            run_command(["aggregate_statistics", "--full"], env, f"statistics-full-{i}")["seconds"]
            for i in range(2)
        ]
        t_full = min(runs)
        corrupted = None
        if args.corrupt_after_rebuild:
            corrupted = conn.execute(
                "UPDATE payments_receipt SET usd_amount = usd_amount + 0.01 WHERE id = (SELECT"
                f" min(r.id) {COUNTED}) RETURNING id"
            ).fetchone()[0]
            _, bare = bare_monthly(conn)
        t_bare2, _ = bare_monthly(conn)
        t_bare = min(t_bare, t_bare2)
        MONTHS["from"] = min(MONTHS["from"], *bare)
        MONTHS["to"] = max(MONTHS["to"], *bare)
        report.add("bare SQL GROUP BY (monthly)", common.fmt_s(t_bare))
        report.add("bare SQL, monthly + 3 breakdowns", common.fmt_s(t_all))
        report.add("bare SQL, the same in one GROUPING SETS pass", common.fmt_s(t_one["s"]))
        report.add(
            "full rebuild (aggregate_statistics --full)",
            f"{common.fmt_s(t_full)} = {t_full / t_bare:.2f}x bare"
            f" (best of {', '.join(common.fmt_s(r) for r in runs)})",
            "<= 1.5x bare",
            t_full <= 1.5 * t_bare,
        )
        report.add("full rebuild / all bare queries", f"{t_full / t_all:.2f}x")
        check_monthly(report, bare, "full rebuild")
        for group_by, rows in breakdowns.items():
            check_breakdown(report, rows, group_by, "full rebuild")

        if not args.no_peer:
            peer = peers.pandas_statistics(common.db_url(DB), MONTHS["from"], MONTHS["to"])
            # read_sql's default coerce_float=True turns the NUMERIC amounts into floats, as a
            # statistician's notebook would: counts must match exactly, totals within rounding.
            counts_wrong = {
                m: v
                for m, v in peer["months"].items()
                if (v[1], v[2]) != bare.get(m, (0, 0, 0))[1:]
            }
            report.check(
                not counts_wrong and set(peer["months"]) == set(bare),
                f"pandas peer counts differ from the bare SQL: {list(counts_wrong.items())[:3]}",
            )
            off = max(abs(Decimal(v[0]) - bare[m][0]) for m, v in peer["months"].items())
            report.add("pandas totals vs bare SQL (float sums)", f"max difference USD {off:.4f}")
            report.add(
                "pandas read_sql + groupby (peer)",
                f"{common.fmt_s(peer['seconds'])} = {peer['seconds'] / t_full:.1f}x full rebuild",
                ">= 3x the full rebuild",
                peer["seconds"] >= 3 * t_full,
            )

        try:
            if not args.no_incremental:
                time_days(conn, ds, env, report, t_full, args.day_runs)
        finally:
            if corrupted:
                conn.execute(
                    "UPDATE payments_receipt SET usd_amount = usd_amount - 0.01 WHERE id = %s",
                    [corrupted],
                )
            flush_redis()
    return common.finish(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
