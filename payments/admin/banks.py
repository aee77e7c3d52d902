"""Admin: banks and their webhook secrets, purpose codes, dollar accounts, receipts (with the
unmatched queue, the reconciliation view and the retention compliance report) and the webhook log.

Changelists stay fast on tens of millions of rows: no full-table COUNT (show_full_result_count=False
and a paginator whose count stops at 10,000), no facet counts, cheap filters on indexed columns.
"""

import csv
import datetime

from django import forms
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.functional import cached_property

from config.logging import mask_cnic_text
from payments.models import (
    AccountClosure,
    Bank,
    BankEvent,
    BankSecret,
    DollarAccount,
    PurposeCode,
    Receipt,
    ReceiptReversal,
    UnmatchedReceipt,
    WebhookDelivery,
)
from payments.selectors_banks import (
    month_bounds,
    month_from_text,
    reconciliation,
    retention_breaches,
)
from payments.services.banks import bank_secret_revoke
from payments.services.receipts import receipts_link_account


class CappedCountPaginator(Paginator):
    """Counts at most CAP + 1 rows (COUNT over a LIMITed subquery), so a changelist over millions
    of receipts never scans the table to number its pages. Narrow with filters to see past it."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.CAP + 1].count()


class FastChangeList(admin.ModelAdmin):
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    list_per_page = 50


class ReadOnlyAdmin(FastChangeList):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- banks and secrets ----------------------------------------------------------------------------


class BankSecretForm(forms.ModelForm):
    secret = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        min_length=16,
        help_text="Shown in full only now; afterwards only its last 4 characters.",
    )

    class Meta:
        model = BankSecret
        fields = ["secret"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # A stored secret is never sent back to the browser and cannot be edited.
            self.fields["secret"].disabled = True
            self.fields["secret"].required = False


class BankSecretInline(admin.TabularInline):
    model = BankSecret
    form = BankSecretForm
    extra = 1
    fields = ["secret", "hint", "active", "created_at", "revoked_at"]
    readonly_fields = ["hint", "active", "created_at", "revoked_at"]
    can_delete = False


@admin.register(Bank)
class BankAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "enabled", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["code", "name"]
    inlines = [BankSecretInline]


@admin.register(BankSecret)
class BankSecretAdmin(admin.ModelAdmin):
    list_display = ["bank", "hint", "active", "created_at", "revoked_at"]
    list_filter = ["active", "bank"]
    fields = ["bank", "hint", "active", "created_at", "revoked_at"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # secrets are added on the bank's page or with add_bank

    @admin.action(description="Revoke selected secrets (deliveries signed with them get 401)")
    def revoke(self, request, queryset):
        for bank_secret in queryset:
            bank_secret_revoke(bank_secret=bank_secret)
        messages.success(request, f"Revoked {queryset.count()} secret(s).")


@admin.register(PurposeCode)
class PurposeCodeAdmin(admin.ModelAdmin):
    list_display = ["code", "description", "category", "is_it", "retired"]
    list_filter = ["is_it", "retired", "category"]
    search_fields = ["code", "description"]


# --- accounts -------------------------------------------------------------------------------------


@admin.register(DollarAccount)
class DollarAccountAdmin(ReadOnlyAdmin):
    list_display = [
        "iban",
        "bank",
        "currency",
        "masked_cnic",
        "freelancer",
        "opened_on",
        "closed_on",
    ]
    list_select_related = ["bank", "freelancer"]
    list_filter = ["bank", "currency"]
    search_fields = ["=iban", "=holder_cnic"]
    fields = ["iban", "bank", "currency", "masked_cnic", "freelancer", "opened_on", "closed_on"]
    readonly_fields = fields

    @admin.display(description="holder CNIC")
    def masked_cnic(self, obj: DollarAccount) -> str:
        return mask_cnic_text(obj.holder_cnic)


# --- receipts -------------------------------------------------------------------------------------


class MonthFilter(admin.SimpleListFilter):
    title = "month (value date)"
    parameter_name = "month"

    def lookups(self, request, model_admin):
        today = timezone.localdate()
        months, year, month = [], today.year, today.month
        for _ in range(24):
            months.append((f"{year:04d}-{month:02d}", f"{datetime.date(year, month, 1):%B %Y}"))
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        return months

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        start = month_from_text(self.value())
        if start is None:
            return queryset.none()
        start, end = month_bounds(start)
        return queryset.filter(value_date__gte=start, value_date__lt=end)


class MatchedFilter(admin.SimpleListFilter):
    title = "matched"
    parameter_name = "matched"

    def lookups(self, request, model_admin):
        return [("yes", "Matched to an account"), ("no", "Unmatched")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(account__isnull=False)
        if self.value() == "no":
            return queryset.filter(account__isnull=True)
        return queryset


class ReversedFilter(admin.SimpleListFilter):
    title = "reversed"
    parameter_name = "reversed"

    def lookups(self, request, model_admin):
        return [("yes", "Reversed"), ("no", "Not reversed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(reversed_on__isnull=False)
        if self.value() == "no":
            return queryset.filter(reversed_on__isnull=True)
        return queryset


RECEIPT_FIELDS = [
    "source",
    "bank",
    "reference",
    "iban",
    "account",
    "freelancer",
    "amount",
    "currency",
    "usd_amount",
    "pkr_rate",
    "value_date",
    "purpose_code",
    "retained_amount",
    "tax_withheld_pkr",
    "remitter_name",
    "remitter_country",
    "reversed_on",
    "reversal_reason",
    "created_at",
]


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    change_list_template = "admin/payments/receipt/change_list.html"
    list_display = [
        "value_date",
        "bank",
        "reference",
        "amount",
        "currency",
        "usd_amount",
        "purpose_code",
        "remitter_country",
        "matched_to",
        "reversed_on",
    ]
    list_select_related = ["bank", "purpose_code", "freelancer"]
    list_filter = ["bank", MonthFilter, MatchedFilter, ReversedFilter, "purpose_code", "source"]
    search_fields = ["=reference", "=iban"]
    fields = RECEIPT_FIELDS
    readonly_fields = RECEIPT_FIELDS
    ordering = ["-value_date", "-id"]

    @admin.display(description="matched to")
    def matched_to(self, obj: Receipt) -> str:
        return (
            str(obj.freelancer)
            if obj.freelancer_id
            else ("account" if obj.account_id else "unmatched")
        )

    def get_urls(self):
        extra = [
            path(
                "reconciliation/",
                self.admin_site.admin_view(self.reconciliation_view),
                name="payments_receipt_reconciliation",
            ),
            path(
                "retention/",
                self.admin_site.admin_view(self.retention_view),
                name="payments_receipt_retention",
            ),
        ]
        return extra + super().get_urls()

    def reconciliation_view(self, request):
        form = ReconciliationForm(request.GET or None)
        rows = []
        if form.is_valid():
            data = form.cleaned_data
            rows = reconciliation(
                date_from=data["date_from"],
                date_to=data["date_to"],
                bank_id=data["bank"].pk if data["bank"] else None,
            )
            if request.GET.get("format") == "csv":
                response = HttpResponse(content_type="text/csv; charset=utf-8")
                response["Content-Disposition"] = 'attachment; filename="reconciliation.csv"'
                writer = csv.writer(response)
                keys = [
                    "bank__code",
                    "value_date",
                    "currency",
                    "receipts",
                    "total_amount",
                    "total_usd",
                    "reversed",
                    "reversed_amount",
                ]
                writer.writerow(
                    [
                        "bank",
                        "value_date",
                        "currency",
                        "receipts",
                        "amount",
                        "usd_amount",
                        "reversed",
                        "reversed_amount",
                    ]
                )
                for row in rows:
                    writer.writerow([row[key] for key in keys])
                return response
        context = {
            **self.admin_site.each_context(request),
            "title": "Reconciliation: receipts per bank and day",
            "form": form,
            "rows": rows,
            "opts": self.model._meta,
            "query": request.GET.urlencode(),
        }
        return TemplateResponse(request, "admin/payments/receipt/reconciliation.html", context)

    def retention_view(self, request):
        form = RetentionForm(request.GET or None)
        breaches = []
        if form.is_valid():
            breaches = retention_breaches(month=form.cleaned_data["month"])
        context = {
            **self.admin_site.each_context(request),
            "title": "Retention rule compliance",
            "form": form,
            "breaches": breaches,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/payments/receipt/retention.html", context)


class ReconciliationForm(forms.Form):
    bank = forms.ModelChoiceField(Bank.objects.all(), required=False)
    date_from = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to"):
            if data["date_from"] > data["date_to"]:
                self.add_error("date_to", "Must not be before the start date.")
            elif (data["date_to"] - data["date_from"]).days > 366:
                self.add_error("date_to", "At most 366 days at a time.")
        return data


class RetentionForm(forms.Form):
    month = forms.DateField(
        input_formats=["%Y-%m"],
        widget=forms.DateInput(attrs={"type": "month"}),
        help_text="YYYY-MM",
    )


@admin.register(UnmatchedReceipt)
class UnmatchedReceiptAdmin(ReceiptAdmin):
    """The queue of receipts whose IBAN matches no known account (still counted nationally)."""

    change_list_template = None
    list_display = ["value_date", "bank", "reference", "iban", "amount", "currency", "usd_amount"]
    list_filter = ["bank", MonthFilter, ReversedFilter]
    actions = ["match_now"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(account__isnull=True)

    def get_urls(self):
        return admin.ModelAdmin.get_urls(self)  # the report views live under receipts only

    @admin.action(description="Match selected receipts to their accounts now")
    def match_now(self, request, queryset):
        changed = 0
        for iban in set(queryset.values_list("iban", flat=True)):
            account = DollarAccount.objects.filter(iban=iban).first()
            if account is not None:
                changed += receipts_link_account(account=account)
        messages.info(request, f"{changed} receipt(s) matched.")

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# --- webhook log ----------------------------------------------------------------------------------


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = [
        "received_at",
        "bank_code",
        "response_status",
        "outcome",
        "signature_verdict",
        "event_type",
        "event_id",
    ]
    list_filter = ["outcome", "signature_verdict", "bank"]
    search_fields = ["=event_id"]
    ordering = ["-received_at", "-id"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(BankEvent)
class BankEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "bank", "event_id", "type", "outcome"]
    list_filter = ["type", "outcome", "bank"]
    search_fields = ["=event_id"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


@admin.register(ReceiptReversal)
class ReceiptReversalAdmin(ReadOnlyAdmin):
    list_display = ["reference", "bank", "reversed_on", "reason", "created_at"]
    search_fields = ["=reference"]


@admin.register(AccountClosure)
class AccountClosureAdmin(ReadOnlyAdmin):
    list_display = ["iban", "bank", "closed_on", "created_at"]
    search_fields = ["=iban"]
