"""Celery tasks: incentives. Load by id, call a service, nothing else.

Named ``payments.tasks.incentives.incentive_*`` and routed to the ``batch`` queue by
CELERY_TASK_ROUTES. Both are safe to run twice.
"""

import datetime

from celery import shared_task

from payments.services import incentives as services

SWEEP_AFTER = datetime.timedelta(minutes=15)


@shared_task(name="payments.tasks.incentives.incentive_compute")
def incentive_compute(scheme_id: int) -> str:
    scheme = services.scheme_compute_pending(scheme_id=scheme_id)
    return "computed" if scheme else "nothing pending"


@shared_task(name="payments.tasks.incentives.incentive_sweep")
def incentive_sweep() -> int:
    """Re-enqueue computations requested more than 15 minutes ago whose task never ran."""
    pending = services.schemes_pending_compute(older_than=SWEEP_AFTER)
    for scheme_id in pending:
        incentive_compute.delay(scheme_id)
    return len(pending)
