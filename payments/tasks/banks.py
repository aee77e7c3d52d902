"""Celery tasks: banks. Load by id, call a service, nothing else."""

from celery import shared_task

from payments.services.bank_webhooks import webhook_deliveries_prune
from payments.services.receipts import receipts_link_sweep


@shared_task(name="payments.tasks.banks_link_sweep")
def banks_link_sweep() -> int:
    """Periodic safety net: link accounts and receipts left unlinked, apply unapplied reversals."""
    return receipts_link_sweep()


@shared_task(name="payments.tasks.bank_deliveries_prune")
def bank_deliveries_prune() -> int:
    """Periodic: delete records of rejected deliveries older than the retention period."""
    return webhook_deliveries_prune()
