"""Signals the payments app sends; registry connects receivers in its AppConfig.ready().

Sent *inside* the transaction that changed the receipts, so a receiver's database writes (for
example marking a month's statistics stale) commit or roll back with the change itself. Receivers
defer anything else (Celery tasks) with ``transaction.on_commit``.
"""

from django.dispatch import Signal

# Receipts were recorded, reversed or re-matched (their freelancer or account changed).
# kwargs: months (set[datetime.date]: the first day of each month whose figures changed);
# added (optional list of receipt ids): the change is only that these receipts were recorded.
# batch (optional, PostgreSQL): a list of (sql, params) the sender runs in one round trip after
# the statement that records ``added`` (payments.services.remittance_insert); a receiver appends
# its statements instead of running them, and they must write nothing about receipts that do not
# exist (the sender may have recorded nothing: a redelivery).
receipts_changed = Signal()
