"""Signals the freelancers app sends; higher apps connect receivers in ready()."""

from django.dispatch import Signal

# Sent after the approval is committed. kwargs: freelancer (Freelancer)
freelancer_approved = Signal()
# Sent after a freelancer's status changed. kwargs: freelancer, old_status, new_status
freelancer_status_changed = Signal()
