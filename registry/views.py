"""The public statistics page: the same rows the API serves, drawn as server-side SVG."""

from decimal import Decimal

from django.shortcuts import render
from django.utils import timezone

from registry import charts, reports
from registry import periods as P

BREAKDOWNS = (("category", "By category"), ("country", "By remitter country"),
              ("province", "By province"))  # fmt: skip


def statistics_page(request):
    today = timezone.localdate()
    last = P.month_key(today.year, today.month)
    months = reports.monthly_rows(first=P.month_add(last, -23), last=last)
    fiscal_year = P.fiscal_year_of_month(last)
    fiscal_years = reports.fiscal_year_rows(first=fiscal_year - 4, last=fiscal_year)
    # FYTD of this fiscal year against the same months of the previous one.
    fy_months = [m for m in months if m["fiscal_year"] == P.fiscal_year_label(fiscal_year)]
    previous_fytd = {
        m["month"]: Decimal(m["fytd_usd"])
        for m in months
        if m["fiscal_year"] == P.fiscal_year_label(fiscal_year - 1)
    }
    fytd_chart = charts.bar_chart(
        labels=[m["month"] for m in fy_months],
        series=[
            (
                "FYTD " + P.fiscal_year_label(fiscal_year),
                [Decimal(m["fytd_usd"]) for m in fy_months],
                charts.GREEN,
            ),
            (
                "FYTD " + P.fiscal_year_label(fiscal_year - 1),
                [
                    previous_fytd.get(
                        P.month_label(P.month_add(P.parse_month(m["month"]), -12)), Decimal(0)
                    )
                    for m in fy_months
                ],
                charts.GREY,
            ),
        ],  # fmt: skip
        title="Fiscal year to date against the previous fiscal year",
    )
    by_month = {m["month"]: Decimal(m["total_usd"]) for m in months}
    recent = months[-12:]
    monthly_chart = charts.bar_chart(
        labels=[m["month"] for m in recent],
        series=[
            ("Exports (USD)", [Decimal(m["total_usd"]) for m in recent], charts.GREEN),
            (
                "Same month a year earlier",
                [
                    by_month.get(
                        P.month_label(P.month_add(P.parse_month(m["month"]), -12)), Decimal(0)
                    )
                    for m in recent
                ],
                charts.GREY,
            ),
        ],  # fmt: skip
        title="Monthly IT exports with the same month a year earlier",
    )
    breakdowns = []
    for group_by, title in BREAKDOWNS:
        rows = reports.fytd_breakdown(last=last, group_by=group_by)
        for row in rows:
            row["label"] = row[group_by]
        breakdowns.append(
            {
                "group_by": group_by,
                "title": title,
                "rows": rows,
                "chart": charts.share_bars(
                    rows=[(r["label"], Decimal(r["fytd_usd"])) for r in rows[:12]], title=title
                ),
            }
        )
    return render(
        request,
        "registry/statistics.html",
        {
            "latest": months[-1],
            "recent": list(reversed(recent)),
            "fiscal_years": list(reversed(fiscal_years)),
            "fiscal_year_label": P.fiscal_year_label(fiscal_year),
            "monthly_chart": monthly_chart,
            "fytd_chart": fytd_chart,
            "breakdowns": breakdowns,
            "registrations": list(
                reversed(reports.registration_rows(first=P.month_add(last, -11), last=last))
            ),
            "csv_from": recent[0]["month"],
            "csv_to": recent[-1]["month"],
        },
    )
