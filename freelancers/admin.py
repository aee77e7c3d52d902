"""The board's admin: fast lists over a million freelancers, workflow actions with a reason,
documents for staff only, full history. Every action calls the workflow services."""

import datetime
import re

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Exists, OuterRef
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from simple_history.admin import SimpleHistoryAdmin

from freelancers.forms import ReasonForm
from freelancers.models import (
    Document,
    Education,
    Freelancer,
    OutboundEmail,
    PlatformProfile,
    Recommendation,
    RegistrationCounter,
    ServiceCategory,
    StatusChange,
)
from freelancers.services import workflow
from freelancers.validators import mask_cnic

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP rows (``SELECT COUNT(*) FROM (... LIMIT n)``); an unfiltered
    PostgreSQL table reports the planner's estimate instead. No full-table COUNT."""

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        capped = queryset.order_by()[: COUNT_CAP + 1].count()
        if capped <= COUNT_CAP:
            return capped
        if connection.vendor == "postgresql" and not queryset.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > COUNT_CAP:
                return int(row[0])
        return COUNT_CAP


class CategoryFilter(admin.SimpleListFilter):
    """Category filter as an EXISTS subquery: no join, no DISTINCT over the big table."""

    title = "service category"
    parameter_name = "category"

    def lookups(self, request, model_admin):
        return [(c.slug, c.name) for c in ServiceCategory.objects.all()]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        through = Freelancer.categories.through
        return queryset.filter(
            Exists(
                through.objects.filter(
                    freelancer_id=OuterRef("pk"), servicecategory__slug=self.value()
                )
            )
        )


class ValidityFilter(admin.SimpleListFilter):
    """Approved registrations by expiry (uses the partial index on expires_on)."""

    title = "registration validity"
    parameter_name = "validity"

    def lookups(self, request, model_admin):
        return [
            ("valid", "valid"),
            ("expiring", "expires within 30 days"),
            ("expired", "expired"),
        ]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        approved = queryset.filter(status=Freelancer.Status.APPROVED)
        if self.value() == "valid":
            return approved.filter(expires_on__gte=today)
        if self.value() == "expiring":
            return approved.filter(
                expires_on__gte=today, expires_on__lte=today + datetime.timedelta(days=30)
            )
        if self.value() == "expired":
            return approved.filter(expires_on__lt=today)
        return queryset


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DocumentInline(ReadOnlyInline):
    model = Document
    fields = ["kind", "view_link", "content_type", "size", "uploaded_at"]
    readonly_fields = fields

    @admin.display(description="file")
    def view_link(self, obj):
        url = reverse("freelancers:document", args=[obj.pk])
        return format_html(
            '<a href="{}?inline=1" target="_blank" rel="noopener">view</a> · '
            '<a href="{}">download</a> ({})',
            url,
            url,
            obj.original_name,
        )


class PlatformInline(ReadOnlyInline):
    model = PlatformProfile
    fields = ["platform", "url"]
    readonly_fields = fields


class EducationInline(ReadOnlyInline):
    model = Education
    fields = ["level", "institution", "field_of_study", "year_completed"]
    readonly_fields = fields


class RecommendationInline(ReadOnlyInline):
    model = Recommendation
    fields = ["review_round", "decision", "reviewer", "note", "created_at"]
    readonly_fields = fields


class StatusChangeInline(ReadOnlyInline):
    model = StatusChange
    fields = ["created_at", "from_status", "to_status", "actor", "reason"]
    readonly_fields = fields
    verbose_name_plural = "status changes (who, when, why)"


def _workflow_action(label: str, call, *, needs_reason: bool, help_text: str = ""):
    """A bulk action that first asks for a reason, then calls the service for each selected
    application; a refusal for one application is reported and the others go on."""

    def action(modeladmin, request, queryset):
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            reason = form.cleaned_data["reason"].strip()
            if needs_reason and not reason:
                form.add_error("reason", "A reason is required: the freelancer receives it.")
            else:
                done, refused = 0, []
                for freelancer in queryset.select_related("user"):
                    try:
                        call(freelancer=freelancer, user=request.user, reason=reason)
                        done += 1
                    except workflow.WorkflowError as exc:
                        refused.append(f"{freelancer}: {exc}")
                if done:
                    modeladmin.message_user(request, f"{label}: {done} application(s).")
                for text in refused[:20]:
                    modeladmin.message_user(request, text, level=messages.ERROR)
                return None
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": label,
            "label": label,
            "help_text": help_text,
            "needs_reason": needs_reason,
            "form": form,
            "queryset": queryset[:50],
            "count_shown": min(queryset.count(), 50),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across", "0"),
            "action": request.POST.get("action"),
            "opts": modeladmin.model._meta,
        }
        return TemplateResponse(request, "admin/freelancers/action_reason.html", context)

    action.short_description = label
    action.__name__ = re.sub(r"\W+", "_", label.lower()).strip("_")
    return action


recommend_approval = _workflow_action(
    "Recommend approval",
    lambda freelancer, user, reason: workflow.application_recommend(
        freelancer=freelancer, reviewer=user, decision="approve", note=reason
    ),
    needs_reason=False,
    help_text="Your recommendation goes to an approver, who decides.",
)
recommend_rejection = _workflow_action(
    "Recommend rejection",
    lambda freelancer, user, reason: workflow.application_recommend(
        freelancer=freelancer, reviewer=user, decision="reject", note=reason
    ),
    needs_reason=True,
)
request_changes = _workflow_action(
    "Request changes",
    lambda freelancer, user, reason: workflow.application_request_changes(
        freelancer=freelancer, actor=user, reason=reason
    ),
    needs_reason=True,
    help_text="The freelancer receives your message and can resubmit.",
)
approve = _workflow_action(
    "Approve (approver)",
    lambda freelancer, user, reason: workflow.application_approve(
        freelancer=freelancer, approver=user, reason=reason
    ),
    needs_reason=False,
)
reject = _workflow_action(
    "Reject (approver)",
    lambda freelancer, user, reason: workflow.application_reject(
        freelancer=freelancer, approver=user, reason=reason
    ),
    needs_reason=True,
)
suspend = _workflow_action(
    "Suspend registration",
    lambda freelancer, user, reason: workflow.application_suspend(
        freelancer=freelancer, approver=user, reason=reason
    ),
    needs_reason=True,
)
reinstate = _workflow_action(
    "Reinstate registration",
    lambda freelancer, user, reason: workflow.application_reinstate(
        freelancer=freelancer, approver=user, reason=reason
    ),
    needs_reason=True,
)

CNIC_SEARCH_RE = re.compile(r"^\d{5}-?\d{7}-?\d$")
REG_NUMBER_RE = re.compile(r"^PSEB-F-\d{4}-\d+$", re.IGNORECASE)


@admin.register(Freelancer)
class FreelancerAdmin(SimpleHistoryAdmin):
    list_display = [
        "full_name",
        "registration_number",
        "cnic_masked",
        "email",
        "status",
        "province",
        "submitted_at",
        "validity",
    ]
    list_filter = ["status", ValidityFilter, "province", CategoryFilter, "submitted_at"]
    list_select_related = ["user"]
    list_per_page = 50
    show_full_result_count = False
    # Facet counts are one COUNT per filter choice over the whole table: never at this size.
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator
    ordering = ["-id"]
    search_help_text = (
        "Exact CNIC (with or without dashes), exact registration number, exact e-mail, "
        "or the start of a name."
    )
    search_fields = ["full_name"]  # enables the box; get_search_results decides the lookup
    raw_id_fields = ["user"]
    actions = [
        recommend_approval,
        recommend_rejection,
        request_changes,
        approve,
        reject,
        suspend,
        reinstate,
    ]
    inlines = [
        RecommendationInline,
        StatusChangeInline,
        DocumentInline,
        PlatformInline,
        EducationInline,
    ]
    readonly_fields = [
        "status",
        "registration_number",
        "submitted_at",
        "approved_at",
        "expires_on",
        "review_round",
        "is_renewal",
        "reminder_sent_for",
        "email_verified_at",
        "declaration_accepted_at",
        "certificate_link",
        "created_at",
    ]
    fieldsets = [
        (
            "Application",
            {
                "fields": [
                    "user",
                    "full_name",
                    "cnic",
                    "date_of_birth",
                    "mobile",
                    "address",
                    "city",
                    "province",
                    "categories",
                ]
            },
        ),
        (
            "Workflow (change it with the actions on the list page)",
            {
                "fields": [
                    "status",
                    "registration_number",
                    "certificate_link",
                    "submitted_at",
                    "approved_at",
                    "expires_on",
                    "is_renewal",
                    "review_round",
                    "reminder_sent_for",
                    "email_verified_at",
                    "declaration_accepted_at",
                    "created_at",
                ]
            },
        ),
    ]

    @admin.display(description="CNIC", ordering="cnic")
    def cnic_masked(self, obj):
        return mask_cnic(obj.cnic or "")

    @admin.display(description="e-mail")
    def email(self, obj):
        return obj.user.email

    @admin.display(description="valid until")
    def validity(self, obj):
        if not obj.expires_on:
            return "—"
        return f"expired {obj.expires_on}" if obj.is_expired else f"{obj.expires_on}"

    @admin.display(description="certificate")
    def certificate_link(self, obj):
        if obj.pk and obj.status == Freelancer.Status.APPROVED and obj.registration_number:
            return format_html(
                '<a href="{}">download PDF</a>',
                reverse("freelancers:certificate-staff", args=[obj.pk]),
            )
        return "—"

    def get_search_results(self, request, queryset, search_term):
        """Indexed exact lookups only: CNIC, registration number and e-mail by equality, names by
        prefix; never an icontains scan over the table."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if CNIC_SEARCH_RE.match(term):
            return queryset.filter(cnic=term.replace("-", "")), False
        if REG_NUMBER_RE.match(term):
            return queryset.filter(registration_number=term.upper()), False
        if "@" in term:
            return queryset.filter(user__username=term.lower()), False
        return queryset.filter(full_name__istartswith=term), False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(ServiceCategory)
class ServiceCategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_it"]
    list_editable = ["is_it"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(StatusChange)
class StatusChangeAdmin(admin.ModelAdmin):
    list_display = ["created_at", "freelancer", "from_status", "to_status", "actor"]
    list_filter = ["to_status"]
    list_select_related = ["freelancer", "actor"]
    raw_id_fields = ["freelancer", "actor"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = CappedCountPaginator

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    list_display = ["created_at", "to", "subject", "sent_at", "attempts"]
    readonly_fields = ["to", "subject", "body", "sensitive", "created_at", "sent_at", "attempts"]
    show_full_result_count = False
    paginator = CappedCountPaginator

    def has_add_permission(self, request):
        return False


@admin.register(RegistrationCounter)
class RegistrationCounterAdmin(admin.ModelAdmin):
    list_display = ["year", "last_value"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
