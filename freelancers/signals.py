"""Signals the freelancers app sends; higher apps connect receivers in their AppConfig.ready().

Each signal is sent *inside* the transaction that made the change, so a receiver's database
writes commit or roll back with it. Receivers do only database work synchronously and defer
anything else (e-mail, Celery tasks) with ``transaction.on_commit``.
"""

from django.dispatch import Signal

# A registration was approved (first approval, renewal or reinstatement). kwargs: freelancer
freelancer_approved = Signal()
# A freelancer's status changed. kwargs: freelancer, old_status, new_status
freelancer_status_changed = Signal()
