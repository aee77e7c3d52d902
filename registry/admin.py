"""Read-only views of the stored statistics, and an action to recompute periods."""

from django.contrib import admin, messages

from registry.models import StatisticsPeriod, StatisticsRevision
from registry.services import statistics_period_recompute


@admin.register(StatisticsPeriod)
class StatisticsPeriodAdmin(admin.ModelAdmin):
    list_display = ["kind", "period", "stale", "marked_stale_at", "current"]
    list_filter = ["kind", "stale"]
    search_fields = ["=period"]
    readonly_fields = ["kind", "period", "stale", "marked_stale_at", "current"]
    list_select_related = ["current"]
    show_full_result_count = False
    actions = ["recompute"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Recompute the selected periods now")
    def recompute(self, request, queryset):
        for row in queryset:
            statistics_period_recompute(kind=row.kind, period=row.period)
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
