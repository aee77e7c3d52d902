"""Signals the payments app sends; registry connects receivers in its AppConfig.ready().

Sent *inside* the transaction that changed the receipts, so a receiver's database writes (for
example marking a month's statistics stale) commit or roll back with the change itself. Receivers
defer anything else (Celery tasks) with ``transaction.on_commit``.
"""

from django.dispatch import Signal

# Receipts were recorded, reversed or re-matched (their freelancer or account changed).
# kwargs: months (set[datetime.date]: the first day of each month whose figures changed);
# added (optional list of receipt ids): the change is only that these receipts were recorded.
receipts_changed = Signal()
