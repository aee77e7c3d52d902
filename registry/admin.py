"""Read-only views of the stored statistics, and an action to recompute periods."""

from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Subquery

from registry.models import StatisticsPeriod, StatisticsRevision, StatisticsStaleMark
from registry.services import statistics_period_recompute


def _marks():
    return StatisticsStaleMark.objects.filter(kind=OuterRef("kind"), period=OuterRef("period"))


class StaleFilter(admin.SimpleListFilter):
    title = "stale"
    parameter_name = "stale"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(Exists(_marks()))
        if self.value() == "no":
            return queryset.filter(~Exists(_marks()))
        return queryset


@admin.register(StatisticsPeriod)
class StatisticsPeriodAdmin(admin.ModelAdmin):
    list_display = ["kind", "period", "stale_since", "current"]
    list_filter = ["kind", StaleFilter]
    search_fields = ["=period"]
    readonly_fields = ["kind", "period", "stale_since", "current"]
    list_select_related = ["current"]
    show_full_result_count = False
    actions = ["recompute"]

    def get_queryset(self, request):
        first_mark = _marks().order_by("marked_at").values("marked_at")[:1]
        return super().get_queryset(request).annotate(stale_since=Subquery(first_mark))

    @admin.display(description="stale since (not yet recomputed)", ordering="stale_since")
    def stale_since(self, obj):
        return obj.stale_since or "-"

    def has_add_permission(self, request):
        return False

    @admin.action(description="Recompute the selected periods now")
    def recompute(self, request, queryset):
        for row in queryset:
            statistics_period_recompute(kind=row.kind, period=row.period, from_receipts=True)
        messages.success(request, f"Recomputed {queryset.count()} periods.")


@admin.register(StatisticsRevision)
class StatisticsRevisionAdmin(admin.ModelAdmin):
    list_display = ["kind", "period", "computed_at"]
    list_filter = ["kind"]
    search_fields = ["=period"]
    show_full_result_count = False
    date_hierarchy = None

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
