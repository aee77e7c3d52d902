"""The freelancer's earnings pages: accounts, monthly statements, CSV and PDF downloads."""

import csv
import datetime
import io

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from freelancers.models import Freelancer
from payments.selectors_banks import (
    Statement,
    freelancer_accounts,
    freelancer_months,
    freelancer_statement,
    month_from_text,
)

CSV_HEADER = [
    "value_date",
    "reference",
    "bank",
    "amount",
    "currency",
    "usd_amount",
    "retained_usd",
    "converted_usd",
    "pkr_rate",
    "converted_pkr",
    "tax_withheld_pkr",
    "purpose_code",
    "remitter_country",
    "reversed_on",
]


def signed_in_freelancer(request: HttpRequest) -> Freelancer:
    """The signed-in user's own registration; anyone else is refused (403, also in DRF views)."""
    try:
        return request.user.freelancer
    except Freelancer.DoesNotExist as exc:
        raise PermissionDenied("Only a registered freelancer has earnings.") from exc


def parse_month(value: str) -> datetime.date:
    month = month_from_text(value)
    if month is None:
        raise Http404("No such month")
    return month


@login_required
def earnings_index(request: HttpRequest) -> HttpResponse:
    freelancer = signed_in_freelancer(request)
    return render(
        request,
        "payments/earnings_index.html",
        {
            "freelancer": freelancer,
            "accounts": freelancer_accounts(freelancer=freelancer),
            "months": freelancer_months(freelancer=freelancer),
        },
    )


@login_required
def earnings_month(request: HttpRequest, month: str) -> HttpResponse:
    freelancer = signed_in_freelancer(request)
    statement = freelancer_statement(freelancer=freelancer, month=parse_month(month))
    return render(request, "payments/earnings_month.html", {"statement": statement})


@login_required
def earnings_month_csv(request: HttpRequest, month: str) -> HttpResponse:
    freelancer = signed_in_freelancer(request)
    statement = freelancer_statement(freelancer=freelancer, month=parse_month(month))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="earnings-{month}.csv"'
    statement_csv(statement, response)
    return response


def statement_csv(statement: Statement, out) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for line in statement.lines:
        writer.writerow(
            [
                line.value_date.isoformat(),
                line.reference,
                line.bank,
                line.amount,
                line.currency,
                line.usd_amount,
                line.retained_usd,
                line.converted_usd,
                line.pkr_rate,
                line.converted_pkr,
                line.tax_withheld_pkr,
                line.purpose_code,
                line.remitter_country,
                line.reversed_on.isoformat() if line.reversed_on else "",
            ]
        )
    t = statement.totals
    writer.writerow(
        [
            "total",
            f"{t.receipts} receipts",
            "",
            "",
            "",
            t.usd_received,
            t.usd_retained,
            t.usd_converted,
            "",
            t.pkr_converted,
            t.tax_withheld_pkr,
            "",
            "",
            "",
        ]
    )


@login_required
def earnings_month_pdf(request: HttpRequest, month: str) -> HttpResponse:
    freelancer = signed_in_freelancer(request)
    statement = freelancer_statement(freelancer=freelancer, month=parse_month(month))
    response = HttpResponse(statement_pdf(statement), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="earnings-{month}.pdf"'
    return response


def statement_pdf(statement: Statement) -> bytes:
    """The monthly statement as a one-table PDF (reportlab, built-in Helvetica: no font files)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=landscape(A4), title="Earnings statement")
    styles = getSampleStyleSheet()
    t = statement.totals
    freelancer = statement.freelancer
    story = [
        Paragraph(f"Earnings statement, {statement.month:%B %Y}", styles["Title"]),
        Paragraph(
            f"{freelancer.full_name} · registration {freelancer.registration_number or '-'} · "
            f"CNIC {freelancer.masked_cnic}",
            styles["Normal"],
        ),
        Spacer(1, 8),
        Paragraph(
            f"USD received {t.usd_received} · retained {t.usd_retained} · converted "
            f"{t.usd_converted} (PKR {t.pkr_converted}) · tax withheld PKR {t.tax_withheld_pkr}",
            styles["Normal"],
        ),
        Spacer(1, 8),
    ]
    rows = [
        [
            "Date",
            "Reference",
            "Bank",
            "Amount",
            "USD",
            "Retained USD",
            "PKR",
            "Tax PKR",
            "Code",
            "Country",
            "Reversed",
        ]
    ]
    for line in statement.lines:
        rows.append(
            [
                line.value_date.isoformat(),
                line.reference,
                line.bank,
                f"{line.amount} {line.currency}",
                str(line.usd_amount),
                str(line.retained_usd),
                str(line.converted_pkr),
                str(line.tax_withheld_pkr),
                line.purpose_code,
                line.remitter_country,
                line.reversed_on.isoformat() if line.reversed_on else "",
            ]
        )
    rows.append(
        [
            "Total",
            f"{t.receipts} receipts",
            "",
            "",
            str(t.usd_received),
            str(t.usd_retained),
            str(t.pkr_converted),
            str(t.tax_withheld_pkr),
            "",
            "",
            "",
        ]
    )
    table = Table(rows, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, 0), "Helvetica-Bold"),
                ("FONTSIZE", (0, 0), (-1, -1), 8),
                ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                ("ALIGN", (3, 1), (7, -1), "RIGHT"),
            ]
        )
    )
    story.append(table)
    doc.build(story)
    return buffer.getvalue()
