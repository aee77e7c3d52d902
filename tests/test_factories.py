import pytest
from stdnum import iban
from stdnum.pk import cnic

from tests.factories import DollarAccountFactory, ReceiptFactory


@pytest.mark.django_db
def test_factories_make_valid_identifiers_and_linked_receipts():
    account = DollarAccountFactory()
    assert iban.is_valid(account.iban) and account.iban.startswith("PK")
    assert cnic.is_valid(account.freelancer.cnic)
    receipt = ReceiptFactory(account=account)
    assert receipt.freelancer == account.freelancer
    assert receipt.usd_amount == receipt.amount
