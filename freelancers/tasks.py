"""Celery tasks: load by id, call a service. Each is safe to run twice."""

import datetime

from celery import shared_task
from django.utils import timezone

from freelancers.models import OutboundEmail
from freelancers.services.emails import email_send
from freelancers.services.workflow import registrations_send_expiry_reminders


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def send_outbound_email(email_id: int) -> bool:
    return email_send(email_id=email_id)


@shared_task
def send_pending_emails() -> int:
    """Sweep: send e-mails whose on-commit task never ran (older than two minutes)."""
    cutoff = timezone.now() - datetime.timedelta(minutes=2)
    ids = list(
        OutboundEmail.objects.filter(sent_at__isnull=True, created_at__lt=cutoff, attempts__lt=10)
        .order_by("id")
        .values_list("pk", flat=True)[:1000]
    )
    return sum(1 for pk in ids if email_send(email_id=pk))


@shared_task
def send_expiry_reminders() -> int:
    return registrations_send_expiry_reminders()
