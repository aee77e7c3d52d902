"""Receivers for the freelancers app's signals (connected in PaymentsConfig.ready())."""

from freelancers.models import Freelancer
from payments.services.receipts import accounts_link_freelancer


def link_accounts_on_approval(sender, *, freelancer: Freelancer, **kwargs) -> None:
    """A registration was approved: link the accounts opened for its CNIC, and their receipts.
    Database work only, inside the approving transaction."""
    accounts_link_freelancer(freelancer=freelancer)
