"""Admin and portal pages with 1,000,000 freelancers: server time of each page.

    .venv/bin/python -m bench.admin_pages [--size small|medium|full]

Uses the incentives data set (the same freelancers, accounts and receipts; loaded once). Each page
is requested in-process through Django's test client (the whole middleware stack, the view, the
queries and the template: server time without the network), once to warm up and then --repeat
times; the median and the worst are reported with the number of queries and their time.
Target: each page under 300 ms. Checked: every page answers 200 (the admin behind its TOTP
second factor, the earnings pages as the freelancer) and the CNIC search finds the freelancer.
"""

from __future__ import annotations

import sys
import time

from bench import common, datagen, incentives

ADMIN_CHANGELIST = "/admin/freelancers/freelancer/"
# The freelancer's earnings page (issue 4); overridable while the URL settles.
EARNINGS_URL = "/earnings/"
STATEMENT_MONTH = "2026-06"  # the last month of the incentives data set


class QueryTimer:
    """Counts the queries of a request and the time spent in them."""

    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start
            self.count += 1


def staff_client():
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    user.is_staff = user.is_superuser = True
    user.save()
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="bench", defaults={"confirmed": True}
    )
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def freelancer_client(freelancer_id: int):
    from django.test import Client

    from freelancers.models import Freelancer

    client = Client()
    client.force_login(Freelancer.objects.get(pk=freelancer_id).user)
    return client


def time_page(client, url: str, repeat: int) -> dict:
    from django.db import connection

    client.get(url)  # warm-up: templates compiled, caches filled, plans cached
    runs = []
    for _ in range(repeat):
        qt = QueryTimer()
        with connection.execute_wrapper(qt):
            start = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - start
        runs.append((elapsed, qt.count, qt.seconds, response))
    runs.sort(key=lambda r: r[0])
    med = runs[len(runs) // 2]
    return {
        "median": med[0],
        "worst": runs[-1][0],
        "queries": med[1],
        "sql": med[2],
        "response": runs[-1][3],
    }


def main(argv: list[str] | None = None) -> int:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--earnings-url", default=EARNINGS_URL)
    args = parser.parse_args(argv)
    size = common.size_of(args, "incentive_receipts")
    report = common.make_report("admin_pages", args)
    db = common.dataset_db(incentives.DB_BASE, args.size)
    common.setup_django(db)
    ds = datagen.Dataset(
        freelancers=size["freelancers"],
        receipts=size["incentive_receipts"],
        first_day=incentives.FIRST_DAY,
        last_day=incentives.LAST_DAY,
    )
    datagen.ensure_dataset(db, ds, reload=args.reload)
    report.add("freelancers / receipts", f"{ds.freelancers:,} / {ds.receipts:,}")

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT freelancer_id FROM payments_receipt WHERE freelancer_id IS NOT NULL"
            " GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
        )
        busiest = cursor.fetchone()[0]
    target = ds.freelancers // 2 + 7
    staff = staff_client()
    earner = freelancer_client(busiest)
    pages = [
        ("admin changelist, default page", staff, ADMIN_CHANGELIST, None),
        (
            "admin changelist, status filter",
            staff,
            ADMIN_CHANGELIST + "?status__exact=submitted",
            None,
        ),
        (
            "admin changelist, CNIC search",
            staff,
            ADMIN_CHANGELIST + f"?q={datagen.cnic(target)}",
            f"Bench Freelancer {target}",
        ),
        (f"earnings page (freelancer {busiest})", earner, args.earnings_url, None),
        (
            f"earnings statement {STATEMENT_MONTH} (freelancer {busiest})",
            earner,
            f"{args.earnings_url}{STATEMENT_MONTH}/",
            None,
        ),
    ]
    for label, client, url, must_contain in pages:
        result = time_page(client, url, args.repeat)
        response = result["response"]
        ok = report.check(
            response.status_code == 200,
            f"{label}: {url} answered {response.status_code}",
        )
        if ok and must_contain:
            report.check(
                must_contain.encode() in response.content, f"{label}: result lacks {must_contain!r}"
            )
        report.add(
            label,
            f"{result['median'] * 1000:.0f} ms (worst {result['worst'] * 1000:.0f}; "
            f"{result['queries']} queries, {result['sql'] * 1000:.0f} ms SQL)",
            "< 300 ms",
            ok and result["median"] < 0.3,
        )
    return common.finish(report, args.json)


if __name__ == "__main__":
    sys.exit(main())
