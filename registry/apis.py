"""Public statistics API (contract: statistics.md). No login, no cache: every answer is read
from the stored figures, so once ``aggregate_statistics`` returns every endpoint has them."""

import csv
import datetime
import io

from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from registry import periods as P
from registry import reports

MAX_MONTHS = 240
FORMATS = ("json", "csv")
GROUPS = ("category", "country", "province")


class InvalidParameters(Exception):
    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields


class IgnoreFormatParameter(DefaultContentNegotiation):
    """``format`` is this API's own parameter (json or csv, anything else a 400 naming it), not
    DRF's renderer override, which would answer an unknown format with 404."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _one(request, name: str) -> str | None:
    values = request.query_params.getlist(name)
    if len(values) > 1:
        raise InvalidParameters({name: ["Give this parameter at most once."]})
    return values[0] if values else None


def _choice(request, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
    value = _one(request, name)
    if value is None or value == "":
        return default
    if value not in choices:
        raise InvalidParameters({name: [f"Must be one of: {', '.join(choices)}."]})
    return value


def _as_of(request) -> datetime.datetime | None:
    value = _one(request, "as_of")
    if value is None:
        return None
    try:
        moment = parse_datetime(value)
        if moment is None:
            day = parse_date(value)
            if day is not None:
                moment = datetime.datetime.combine(day, datetime.time())
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidParameters(
            {"as_of": ["Expected an ISO 8601 timestamp, for example 2025-08-01T12:00:00+05:00."]}
        )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    try:
        # In UTC: PostgreSQL refuses offsets beyond +-15:59 (a 500 otherwise).
        return moment.astimezone(datetime.UTC)
    except OverflowError:
        raise InvalidParameters({"as_of": ["Out of range."]}) from None


def _render(request, rows: list[dict], columns: list[str], filename: str, fmt: str):
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="{filename}.csv"'
        return response
    return Response({"results": rows})


class StatisticsApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []
    # The contract allows anonymous rate limits of at least 600/min; these public, cheap reads
    # are not throttled at all.
    throttle_classes: list = []
    renderer_classes = [JSONRenderer]
    content_negotiation_class = IgnoreFormatParameter
    group_choices = GROUPS

    def get(self, request):
        try:
            fmt = _choice(request, "format", FORMATS, "json")
            group_by = _choice(request, "group_by", self.group_choices, None)
            first, last = self.parse_range(request)
            as_of = _as_of(request) if self.supports_as_of else None
        except InvalidParameters as error:
            return Response({"error": "invalid", "fields": error.fields}, status=400)
        rows = self.rows(first=first, last=last, group_by=group_by, as_of=as_of)
        columns = self.columns(group_by)
        return _render(request, rows, columns, self.filename, fmt)


def _month_range(request) -> tuple[int, int]:
    errors: dict[str, list[str]] = {}
    parsed: dict[str, int | None] = {}
    for name in ("from", "to"):
        value = _one(request, name)
        try:
            parsed[name] = None if value is None else P.parse_month(value)
        except ValueError as error:
            errors[name] = [str(error)]
    if errors:
        raise InvalidParameters(errors)
    today = timezone.localdate()
    last = parsed["to"] or P.month_key(today.year, today.month)
    first = parsed["from"] or P.month_add(last, -11)
    if first > last:
        raise InvalidParameters({"from": ["Must not be after 'to'."]})
    if P.months_between(first, last) > MAX_MONTHS:
        raise InvalidParameters({"from": [f"The range may span at most {MAX_MONTHS} months."]})
    return first, last


def _fiscal_year_range(request) -> tuple[int, int]:
    errors: dict[str, list[str]] = {}
    parsed: dict[str, int | None] = {}
    for name in ("from", "to"):
        value = _one(request, name)
        try:
            parsed[name] = None if value is None else P.parse_fiscal_year(value)
        except ValueError as error:
            errors[name] = [str(error)]
    if errors:
        raise InvalidParameters(errors)
    today = timezone.localdate()
    last = (
        parsed["to"]
        if parsed["to"] is not None
        else P.fiscal_year_of_month(P.month_key(today.year, today.month))
    )
    first = parsed["from"] if parsed["from"] is not None else last - 4
    if first > last:
        raise InvalidParameters({"from": ["Must not be after 'to'."]})
    if (last - first + 1) * 12 > MAX_MONTHS:
        raise InvalidParameters({"from": [f"The range may span at most {MAX_MONTHS} months."]})
    return first, last


# JSON by default; format=csv answers the same rows as text/csv (contract: statistics.md).
STATISTICS_RESPONSES = {
    (200, "application/json"): OpenApiTypes.OBJECT,
    (200, "text/csv"): OpenApiTypes.STR,
    400: OpenApiTypes.OBJECT,
}
COMMON_PARAMETERS = [
    OpenApiParameter("format", OpenApiTypes.STR, enum=list(FORMATS)),
    OpenApiParameter("group_by", OpenApiTypes.STR, enum=list(GROUPS)),
    OpenApiParameter("as_of", OpenApiTypes.DATETIME, description="Figures as they stood then."),
]


class MonthlyStatisticsApi(StatisticsApi):
    filename = "monthly-it-exports"
    supports_as_of = True
    parse_range = staticmethod(_month_range)
    rows = staticmethod(reports.monthly_rows)

    @staticmethod
    def columns(group_by):
        extra = [group_by] if group_by else []
        return ["month", "fiscal_year", *extra, "total_usd", "receipts", "freelancers",
                "mom_pct", "yoy_pct", "fytd_usd", "fytd_yoy_pct"]  # fmt: skip

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.STR, description="YYYY-MM"),
            OpenApiParameter("to", OpenApiTypes.STR, description="YYYY-MM"),
            *COMMON_PARAMETERS,
        ],
        responses=STATISTICS_RESPONSES,
    )
    def get(self, request):
        """Monthly IT-export receipts with MoM, YoY, FYTD and FYTD YoY changes."""
        return super().get(request)


class FiscalYearStatisticsApi(StatisticsApi):
    filename = "fiscal-year-it-exports"
    supports_as_of = True
    parse_range = staticmethod(_fiscal_year_range)
    rows = staticmethod(reports.fiscal_year_rows)

    @staticmethod
    def columns(group_by):
        extra = [group_by] if group_by else []
        return ["fiscal_year", *extra, "total_usd", "receipts", "freelancers", "yoy_pct"]

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.STR, description="YYYY-YY, e.g. 2019-20"),
            OpenApiParameter("to", OpenApiTypes.STR, description="YYYY-YY, e.g. 2025-26"),
            *COMMON_PARAMETERS,
        ],
        responses=STATISTICS_RESPONSES,
    )
    def get(self, request):
        """IT-export receipts per fiscal year (July-June) with the change on the year before."""
        return super().get(request)


class RegistrationStatisticsApi(StatisticsApi):
    filename = "monthly-registrations"
    supports_as_of = False
    group_choices = reports.REGISTRATION_GROUPS
    parse_range = staticmethod(_month_range)

    @staticmethod
    def rows(*, first, last, group_by, as_of):
        return reports.registration_rows(first=first, last=last, group_by=group_by)

    @staticmethod
    def columns(group_by):
        return ["month", *([group_by] if group_by else []), "registered", "approved", "active"]

    @extend_schema(
        parameters=[
            OpenApiParameter("from", OpenApiTypes.STR, description="YYYY-MM"),
            OpenApiParameter("to", OpenApiTypes.STR, description="YYYY-MM"),
            OpenApiParameter("format", OpenApiTypes.STR, enum=list(FORMATS)),
            OpenApiParameter("group_by", OpenApiTypes.STR, enum=["province", "category"]),
        ],
        responses=STATISTICS_RESPONSES,
    )
    def get(self, request):
        """Freelancers registered, approved and active per month."""
        return super().get(request)
