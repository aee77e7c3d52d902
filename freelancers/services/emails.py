"""Outbound e-mail: stored with the change that caused it, sent by Celery after commit."""

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from config.celery import enqueue_on_commit
from freelancers.models import OutboundEmail


def email_enqueue(*, to: str, subject: str, body: str, sensitive: bool = False) -> OutboundEmail:
    """Store an e-mail and send it after the surrounding transaction commits.

    If the transaction rolls back, nothing is sent. If the task never runs (broker down), the
    periodic sweep ``send_pending_emails`` sends it later.
    """
    from freelancers.tasks import send_outbound_email

    email = OutboundEmail.objects.create(
        to=to, subject=subject[:200], body=body, sensitive=sensitive
    )
    enqueue_on_commit(send_outbound_email, email.pk)
    return email


def email_send(*, email_id: int) -> bool:
    """Send one stored e-mail unless it was already sent. Returns True if it was sent now.

    Locks the row (select_for_update) so two workers running the same task send it once;
    delivery is at-least-once if the process dies between SMTP and the commit.
    """
    with transaction.atomic():
        email = OutboundEmail.objects.select_for_update().filter(pk=email_id).first()
        if email is None or email.sent_at is not None:
            return False
        email.attempts += 1
        send_mail(email.subject, email.body, settings.DEFAULT_FROM_EMAIL, [email.to])
        email.sent_at = timezone.now()
        if email.sensitive:
            email.body = "(erased after sending: it contained a one-time link)"
        email.save(update_fields=["attempts", "sent_at", "body"])
    return True
