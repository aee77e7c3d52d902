"""Celery tasks: stripe. Load by id, call a service, nothing else; each is safe to run twice."""

from celery import shared_task

from payments.services.stripe_events import stripe_event_apply, stripe_events_retry_pending
from payments.services.stripe_payouts import stripe_payout_match, stripe_payouts_match_pending


@shared_task(name="payments.tasks.stripe_event_apply")
def stripe_event_apply_task(event_pk: int) -> str:
    return stripe_event_apply(event_pk=event_pk).status


@shared_task(name="payments.tasks.stripe_events_sweep")
def stripe_events_sweep() -> int:
    """Beat: apply events left pending, failed (bounded attempts) or deferred."""
    return stripe_events_retry_pending()


@shared_task(name="payments.tasks.stripe_payout_match")
def stripe_payout_match_task(payout_pk: int) -> bool:
    return stripe_payout_match(payout_id=payout_pk)


@shared_task(name="payments.tasks.stripe_payouts_match_sweep")
def stripe_payouts_match_sweep() -> int:
    """Beat: match payouts whose bank remittance arrived after the payout event."""
    return stripe_payouts_match_pending()
