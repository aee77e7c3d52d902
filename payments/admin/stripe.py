"""Admin: Stripe invoices, the raw event store (with replay), payouts, the reconciliation queue."""

from django.contrib import admin, messages
from django.utils import timezone

from payments.models import (
    Invoice,
    StripeAccount,
    StripeEvent,
    StripePayout,
    UnmatchedStripePayout,
)
from payments.services.stripe_events import stripe_event_replay
from payments.services.stripe_payouts import stripe_payout_match, unmatched_payouts_queue


@admin.register(StripeAccount)
class StripeAccountAdmin(admin.ModelAdmin):
    list_display = ["account_id", "freelancer", "payout_account", "created_at"]
    search_fields = ["account_id", "freelancer__registration_number"]
    raw_id_fields = ["freelancer", "payout_account"]


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["id", "freelancer", "client_name", "amount", "currency", "status", "due_date"]
    list_filter = ["status", "currency"]
    search_fields = ["=id", "=payment_intent_id", "=checkout_session_id", "client_email"]
    raw_id_fields = ["freelancer", "receipt", "payout"]
    list_select_related = ["freelancer"]
    show_full_result_count = False
    exclude = ["public_token"]
    readonly_fields = [
        "status",
        "checkout_session_id",
        "checkout_url",
        "checkout_expires_at",
        "checkout_attempt",
        "payment_intent_id",
        "livemode",
        "amount_refunded",
        "receipt",
        "payout",
        "sent_at",
        "paid_at",
        "voided_at",
    ]

    def get_readonly_fields(self, request, obj=None):
        # Only a draft may be corrected here; after sending, the client and Stripe saw it.
        if obj is not None and obj.status != Invoice.Status.DRAFT:
            return [f.name for f in Invoice._meta.fields if f.name != "public_token"]
        return self.readonly_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "type", "livemode", "status", "verdict", "attempts", "received_at"]
    list_filter = ["status", "livemode", "type"]
    search_fields = ["=event_id", "=payment_intent_id"]
    show_full_result_count = False
    readonly_fields = [f.name for f in StripeEvent._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Replay failed or deferred events")
    def replay(self, request, queryset):
        done = 0
        for pk in queryset.values_list("pk", flat=True):
            event = stripe_event_replay(event_pk=pk)
            done += event.status == StripeEvent.Status.APPLIED
        self.message_user(request, f"{done} event(s) applied.", messages.INFO)


@admin.register(StripePayout)
class StripePayoutAdmin(admin.ModelAdmin):
    list_display = ["payout_id", "freelancer", "amount", "currency", "arrival_date", "bank_receipt"]
    list_filter = ["currency", "livemode"]
    search_fields = ["=payout_id", "=account"]
    raw_id_fields = ["freelancer", "bank_receipt"]
    list_select_related = ["freelancer", "bank_receipt"]
    show_full_result_count = False
    actions = ["match_now"]

    def save_model(self, request, obj, form, change):
        # A person linked the remittance by hand (the queue's way out).
        if "bank_receipt" in form.changed_data:
            obj.matched_at = timezone.now() if obj.bank_receipt_id else None
        super().save_model(request, obj, form, change)

    @admin.action(description="Try to match to a bank remittance now")
    def match_now(self, request, queryset):
        matched = sum(
            stripe_payout_match(payout_id=pk) for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(request, f"{matched} payout(s) matched.", messages.INFO)


@admin.register(UnmatchedStripePayout)
class UnmatchedStripePayoutAdmin(StripePayoutAdmin):
    """The reconciliation queue: payouts still unmatched a few days after arrival. A person finds
    the remittance and links it (bank_receipt), or uses 'match now' after fixing the account."""

    def get_queryset(self, request):
        return unmatched_payouts_queue().select_related("freelancer", "bank_receipt")
