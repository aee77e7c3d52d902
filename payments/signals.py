"""Signals the payments app sends; registry connects receivers in its AppConfig.ready()."""

from django.dispatch import Signal

# Sent (after commit) when receipts were recorded, reversed or re-matched.
# kwargs: months (set[datetime.date], first day of each month whose figures changed)
receipts_changed = Signal()
