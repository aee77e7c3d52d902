"""Celery tasks: stripe. The webhook applies events in the request; these beat sweeps pick up
what a dead request left undone, and payouts whose remittance came later. Safe to run twice."""

from celery import shared_task

from payments.services.stripe_events import stripe_events_retry_pending
from payments.services.stripe_payouts import stripe_payouts_match_pending


@shared_task(name="payments.tasks.stripe_events_sweep")
def stripe_events_sweep() -> int:
    """Beat: apply events left pending, failed (bounded attempts) or deferred."""
    return stripe_events_retry_pending()


@shared_task(name="payments.tasks.stripe_payouts_match_sweep")
def stripe_payouts_match_sweep() -> int:
    """Beat: match payouts whose bank remittance arrived after the payout event."""
    return stripe_payouts_match_pending()
