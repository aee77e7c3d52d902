"""payments models: bank webhook deliveries, bank events, reversals and closures.

The delivery log keeps what each bank sent (valid or not); ``BankEvent`` holds each accepted event
once per (bank, event id); ``ReceiptReversal`` and ``AccountClosure`` keep reversals and closures
whatever the order they arrive in, so they apply when their remittance or account becomes known.
"""

from django.db import models
from django.db.models import Q

from payments.models.core import Bank, Receipt

__all__ = ["AccountClosure", "BankEvent", "ReceiptReversal", "UnmatchedReceipt", "WebhookDelivery"]


class WebhookDelivery(models.Model):
    """One HTTP delivery to the bank webhook, recorded whatever its outcome.

    Unauthenticated deliveries keep no body (its length and SHA-256 only); bodies of authentic but
    invalid ones are truncated (``REJECTED_BODY_LIMIT``); rows of rejected deliveries are pruned
    after ``BANK_WEBHOOK_REJECTED_RETENTION_DAYS``, so a flood of bad requests cannot fill the disk.
    """

    REJECTED_BODY_LIMIT = 4096

    class Verdict(models.TextChoices):
        VALID = "valid", "Valid"
        MISSING = "missing", "Missing"
        MALFORMED = "malformed", "Malformed"
        STALE = "stale", "Outside the time window"
        MISMATCH = "mismatch", "No matching signature"
        NOT_CHECKED = "not_checked", "Not checked"

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted", "Accepted (201)"
        DUPLICATE = "duplicate", "Duplicate (200)"
        CONFLICT = "conflict", "Conflict (409)"
        INVALID = "invalid", "Invalid body (400)"
        SIGNATURE = "signature", "Signature rejected (401)"
        UNKNOWN_BANK = "unknown_bank", "Unknown or disabled bank (404)"
        TOO_LARGE = "too_large", "Body too large (413)"
        BUSY = "busy", "Database busy (503, the bank retries)"
        ERROR = "error", "Failed (500, the bank retries)"

    # Indexed by delivery_bank_received_idx, which starts with it.
    bank = models.ForeignKey(
        Bank,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliveries",
        db_index=False,
    )
    bank_code = models.CharField(max_length=32)
    received_at = models.DateTimeField()
    remote_addr = models.CharField(max_length=64, blank=True)
    signature_header = models.CharField(max_length=600, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    content_length = models.PositiveIntegerField(null=True, blank=True)
    user_agent = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    body_truncated = models.BooleanField(default=False)
    body_sha256 = models.CharField(max_length=64, blank=True)
    signature_verdict = models.CharField(
        max_length=12, choices=Verdict.choices, default=Verdict.NOT_CHECKED
    )
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    response_status = models.PositiveSmallIntegerField()
    event_id = models.CharField(max_length=64, blank=True)
    event_type = models.CharField(max_length=32, blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(fields=["received_at"], name="delivery_received_idx"),
            models.Index(fields=["bank", "received_at"], name="delivery_bank_received_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bank_code} {self.received_at:%Y-%m-%d %H:%M:%S} {self.response_status}"


class BankEvent(models.Model):
    """An authentic, valid event a bank sent, stored once per (bank, event id).

    ``data`` holds the event's data in canonical form (decimals, defaults and spellings normalised)
    so that "identical" is a plain equality test.
    """

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied"
        DUPLICATE = "duplicate", "Duplicate of an earlier event"

    # Indexed by the unique (bank, event_id) constraint, which starts with it. A second index on
    # bank alone was also a wrong choice for the planner: a plan cached while the table was
    # small looked events up through it and filtered every event of the bank.
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="events", db_index=False)
    event_id = models.CharField(max_length=64)
    type = models.CharField(max_length=32)
    created = models.DateTimeField()
    data = models.JSONField()
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    delivery = models.ForeignKey(WebhookDelivery, null=True, blank=True, on_delete=models.SET_NULL)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["bank", "event_id"], name="bank_event_unique_id"),
        ]

    def __str__(self) -> str:
        return f"{self.bank_id}:{self.event_id} {self.type}"


class ReceiptReversal(models.Model):
    """A reversal of a receipt, kept even when its receipt has not arrived yet.

    Recording a receipt looks its reversal up and records it already reversed; recording a reversal
    marks its receipt reversed. One reversal per receipt key (as Receipt's unique constraints).
    """

    source = models.CharField(max_length=8, default="bank")
    bank = models.ForeignKey(Bank, null=True, blank=True, on_delete=models.PROTECT)
    reference = models.CharField(max_length=64)
    reversed_on = models.DateField()
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "reference"],
                condition=Q(source="bank"),
                name="reversal_unique_bank_reference",
            ),
            models.UniqueConstraint(
                fields=["reference"],
                condition=Q(source="stripe"),
                name="reversal_unique_stripe_reference",
            ),
        ]

    def __str__(self) -> str:
        return f"reversal of {self.reference} on {self.reversed_on}"


class AccountClosure(models.Model):
    """A closure a bank reported, kept even when the account is not known yet (applied on
    opening)."""

    iban = models.CharField(max_length=34, unique=True)
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT)
    closed_on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.iban} closed on {self.closed_on}"


class UnmatchedReceipt(Receipt):
    """Admin proxy: the queue of receipts not linked to a known account."""

    class Meta:
        proxy = True
        verbose_name = "unmatched receipt"
