"""Admin: incentives. Schemes with compute / approve / export / mark-paid actions that call the
services; entitlements, exclusions and payouts read-only, without full-table counts."""

import csv
from collections.abc import Iterator

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import StreamingHttpResponse
from django.utils.functional import cached_property
from simple_history.admin import SimpleHistoryAdmin

from payments.models import (
    Entitlement,
    Exclusion,
    IncentivePayout,
    IncentiveScheme,
    PayoutAccount,
    PayoutBatch,
)
from payments.selectors_incentives import disbursement_rows
from payments.services.incentives import (
    IncentiveError,
    batch_mark_paid,
    scheme_approve,
    scheme_export_disbursement,
    scheme_request_compute,
)

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows, so a changelist over a million rows never scans them."""

    @cached_property
    def count(self) -> int:
        return self.object_list[: COUNT_CAP + 1].count()


class _Echo:
    def write(self, value):
        return value


def _csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # no spreadsheet formulas


def disbursement_csv(batch: PayoutBatch) -> StreamingHttpResponse:
    """The bank disbursement file: registration number, name, IBAN, amount (PKR)."""
    writer = csv.writer(_Echo())

    def rows() -> Iterator[str]:
        yield writer.writerow(["registration_number", "name", "iban", "amount_pkr"])
        for registration, name, iban, amount in disbursement_rows(batch=batch):
            yield writer.writerow([_csv_cell(registration), _csv_cell(name), iban, f"{amount:.2f}"])

    response = StreamingHttpResponse(rows(), content_type="text/csv")
    name = f"incentive-{batch.scheme_id}-batch-{batch.pk}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


RULE_FIELDS = (
    "name",
    "kind",
    "fiscal_year",
    "rate_percent",
    "basis",
    "min_proceeds_usd",
    "growth_required_percent",
    "cap_per_freelancer_pkr",
    "fund_budget_pkr",
    "purpose_codes",
    "require_approved_before_receipt",
)
STATE_FIELDS = (
    "status",
    "revision",
    "compute_requested_at",
    "compute_requested_by",
    "compute_error",
    "computed_at",
    "computed_by",
    "approved_at",
    "approved_by",
    "paid_at",
    "eligible_count",
    "excluded_count",
    "entitled_total_pkr",
    "awarded_total_pkr",
    "scaled",
)


@admin.register(IncentiveScheme)
class IncentiveSchemeAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "kind",
        "fiscal_year",
        "status",
        "eligible_count",
        "excluded_count",
        "awarded_total_pkr",
        "computed_by",
        "approved_by",
    )
    list_filter = ("status", "kind", "fiscal_year")
    search_fields = ("name",)
    filter_horizontal = ("purpose_codes",)
    fieldsets = ((None, {"fields": RULE_FIELDS}), ("State and figures", {"fields": STATE_FIELDS}))
    actions = ["compute", "approve", "export_disbursement", "mark_paid"]

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != IncentiveScheme.Status.DRAFT:
            return RULE_FIELDS + STATE_FIELDS  # change the rules only before computing
        return STATE_FIELDS

    def _each(self, request, queryset, action, done: str):
        for scheme in queryset:
            try:
                action(scheme)
            except (IncentiveError, PermissionDenied) as exc:
                self.message_user(request, f"{scheme}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{scheme}: {done}", messages.SUCCESS)

    @admin.action(description="Compute (or recompute) the selected schemes")
    def compute(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda s: scheme_request_compute(scheme_id=s.pk, by=request.user),
            "computation queued on the batch queue.",
        )

    @admin.action(description="Approve the selected schemes (four eyes)")
    def approve(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda s: scheme_approve(scheme_id=s.pk, by=request.user, revision=s.revision),
            "approved; its figures are frozen.",
        )

    @admin.action(description="Export a bank disbursement file (CSV) for one approved scheme")
    def export_disbursement(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one scheme to export.", messages.ERROR)
            return None
        scheme = queryset.get()
        try:
            batch = scheme_export_disbursement(scheme_id=scheme.pk, by=request.user)
        except (IncentiveError, PermissionDenied) as exc:
            self.message_user(request, f"{scheme}: {exc}", messages.ERROR)
            return None
        if batch is None:
            self.message_user(
                request,
                f"{scheme}: nothing left to export (awards without a payout account wait for one).",
                messages.WARNING,
            )
            return None
        return disbursement_csv(batch)

    @admin.action(description="Mark the exported disbursement files of the selected schemes paid")
    def mark_paid(self, request, queryset):
        for batch in PayoutBatch.objects.filter(
            scheme__in=queryset, status=PayoutBatch.Status.EXPORTED
        ):
            try:
                batch_mark_paid(batch_id=batch.pk, by=request.user)
            except (IncentiveError, PermissionDenied) as exc:
                self.message_user(request, f"{batch}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{batch}: marked paid.", messages.SUCCESS)


class _ReadOnly(admin.ModelAdmin):
    paginator = CappedCountPaginator
    show_full_result_count = False
    list_select_related = ("freelancer",)
    raw_id_fields = ("freelancer",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Entitlement)
class EntitlementAdmin(_ReadOnly):
    list_display = (
        "freelancer",
        "scheme",
        "proceeds_usd",
        "previous_proceeds_usd",
        "growth_percent",
        "capped_amount_pkr",
        "awarded_amount_pkr",
    )
    list_filter = ("scheme",)
    search_fields = ("=freelancer__registration_number",)


@admin.register(Exclusion)
class ExclusionAdmin(_ReadOnly):
    list_display = ("freelancer", "scheme", "reason", "proceeds_usd", "growth_percent")
    list_filter = ("scheme", "reason")
    search_fields = ("=freelancer__registration_number",)


@admin.register(IncentivePayout)
class IncentivePayoutAdmin(_ReadOnly):
    list_display = ("freelancer", "scheme", "batch", "amount_pkr", "masked_iban", "paid_at")
    list_filter = ("scheme", "batch")
    raw_id_fields = ("freelancer", "entitlement", "batch")
    exclude = ("iban",)
    readonly_fields = ("masked_iban",)

    @admin.display(description="IBAN")
    def masked_iban(self, obj):
        return f"{obj.iban[:4]}************{obj.iban[-4:]}"


@admin.register(PayoutBatch)
class PayoutBatchAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "payouts_count", "total_pkr", "exported_at", "paid_at")
    list_filter = ("status", "scheme")
    readonly_fields = [f.name for f in PayoutBatch._meta.fields]
    actions = ["download_csv", "mark_paid"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Download the disbursement file (CSV) of one batch")
    def download_csv(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one batch.", messages.ERROR)
            return None
        return disbursement_csv(queryset.get())

    @admin.action(description="Mark the selected batches paid")
    def mark_paid(self, request, queryset):
        for batch in queryset:
            try:
                batch_mark_paid(batch_id=batch.pk, by=request.user)
            except (IncentiveError, PermissionDenied) as exc:
                self.message_user(request, f"{batch}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{batch}: marked paid.", messages.SUCCESS)


@admin.register(PayoutAccount)
class PayoutAccountAdmin(SimpleHistoryAdmin):
    list_display = ("freelancer", "masked_iban", "account_title", "updated_at")
    search_fields = ("=freelancer__registration_number",)
    raw_id_fields = ("freelancer",)
    show_full_result_count = False
