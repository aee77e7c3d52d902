"""Events in any order end in the same records: reversals before remittances, accounts opened after
their remittances, freelancers approved after their account was opened, closures before openings."""

import datetime
import itertools

import pytest
from django.db import transaction

from freelancers.models import Freelancer
from freelancers.signals import freelancer_approved
from payments.demo import make_iban
from payments.models import AccountClosure, DollarAccount, Receipt, ReceiptReversal
from payments.services.receipts import receipts_link_sweep
from payments.signals import receipts_changed
from tests.factories import ApprovedFreelancerFactory, FreelancerFactory, valid_cnic
from tests.payments.bank_helpers import account_opened, bank, event, post, remittance  # noqa: F401

pytestmark = pytest.mark.django_db
IBAN = make_iban("ABCD", 4242)


def _approve(freelancer: Freelancer) -> None:
    with transaction.atomic():
        freelancer.status = Freelancer.Status.APPROVED
        freelancer.save()
        freelancer_approved.send(sender=Freelancer, freelancer=freelancer)


def test_reversal_before_its_remittance_is_kept_and_applied_on_arrival(client, bank):  # noqa: F811
    reversal = event("remittance.reversed", {"reference": "FT9", "reversed_on": "2024-03-20"})
    assert post(client, "HBL", reversal).status_code == 201
    assert ReceiptReversal.objects.filter(reference="FT9").exists()
    assert (
        post(client, "HBL", event("remittance.credited", remittance(reference="FT9"))).status_code
        == 201
    )
    receipt = Receipt.objects.get(reference="FT9")
    assert receipt.reversed_on == datetime.date(2024, 3, 20)


def test_reversal_after_its_remittance_marks_it_reversed_and_keeps_it(client, bank):  # noqa: F811
    post(client, "HBL", event("remittance.credited", remittance(reference="FT8")))
    data = {"reference": "FT8", "reversed_on": "2024-03-21", "reason": "recalled"}
    assert post(client, "HBL", event("remittance.reversed", data)).status_code == 201
    receipt = Receipt.objects.get(reference="FT8")
    assert receipt.reversed_on == datetime.date(2024, 3, 21)
    assert receipt.reversal_reason == "recalled"


def test_second_reversal_of_a_reference_is_a_duplicate_whatever_its_id(client, bank):  # noqa: F811
    post(client, "HBL", event("remittance.credited", remittance(reference="FT7")))
    first = event("remittance.reversed", {"reference": "FT7", "reversed_on": "2024-03-21"})
    assert post(client, "HBL", first).status_code == 201
    second = event("remittance.reversed", {"reference": "FT7", "reversed_on": "2024-04-01"})
    response = post(client, "HBL", second)
    assert response.status_code == 200
    assert response.json() == {"status": "duplicate", "id": second["id"]}
    assert Receipt.objects.get().reversed_on == datetime.date(2024, 3, 21)


def test_remittance_before_its_account_is_unmatched_then_linked_on_opening(client, bank):  # noqa: F811
    freelancer = ApprovedFreelancerFactory()
    post(client, "HBL", event("remittance.credited", remittance(reference="FT1", iban=IBAN)))
    receipt = Receipt.objects.get()
    assert receipt.account is None and receipt.freelancer is None
    months = []
    receipts_changed.connect(
        lambda sender, months_=months, **kw: months_.append(kw["months"]),
        weak=False,
        dispatch_uid="test-months",
    )
    try:
        opened = event("account.opened", account_opened(iban=IBAN, cnic=freelancer.cnic))
        assert post(client, "HBL", opened).status_code == 201
    finally:
        receipts_changed.disconnect(dispatch_uid="test-months")
    receipt.refresh_from_db()
    assert receipt.account.iban == IBAN and receipt.freelancer == freelancer
    assert {datetime.date(2024, 3, 1)} in months


def test_remittance_after_the_account_is_linked_at_insert(client, bank):  # noqa: F811
    freelancer = ApprovedFreelancerFactory()
    post(client, "HBL", event("account.opened", account_opened(iban=IBAN, cnic=freelancer.cnic)))
    post(client, "HBL", event("remittance.credited", remittance(iban=IBAN)))
    receipt = Receipt.objects.get()
    assert receipt.account.iban == IBAN and receipt.freelancer == freelancer


def test_account_opened_with_dashed_cnic_links_to_the_approved_freelancer(client, bank):  # noqa: F811
    freelancer = ApprovedFreelancerFactory()
    dashed = f"{freelancer.cnic[:5]}-{freelancer.cnic[5:12]}-{freelancer.cnic[12]}"
    post(client, "HBL", event("account.opened", account_opened(iban=IBAN, cnic=dashed)))
    account = DollarAccount.objects.get()
    assert account.holder_cnic == freelancer.cnic and account.freelancer == freelancer


def test_freelancer_approved_after_account_and_remittances_links_both(client, bank):  # noqa: F811
    freelancer = FreelancerFactory(status=Freelancer.Status.SUBMITTED)
    post(client, "HBL", event("account.opened", account_opened(iban=IBAN, cnic=freelancer.cnic)))
    post(client, "HBL", event("remittance.credited", remittance(iban=IBAN)))
    account = DollarAccount.objects.get()
    assert account.freelancer is None  # registered but not approved: not linked
    assert Receipt.objects.get().account == account
    _approve(freelancer)
    account.refresh_from_db()
    assert account.freelancer == freelancer
    assert Receipt.objects.get().freelancer == freelancer


def test_freelancer_who_registers_after_everything_is_linked_on_approval(client, bank):  # noqa: F811
    cnic = valid_cnic()
    post(client, "HBL", event("remittance.credited", remittance(iban=IBAN)))
    post(client, "HBL", event("account.opened", account_opened(iban=IBAN, cnic=cnic)))
    freelancer = FreelancerFactory(cnic=cnic, status=Freelancer.Status.SUBMITTED)
    _approve(freelancer)
    assert Receipt.objects.get().freelancer == freelancer


def test_account_opened_again_same_cnic_is_200_other_cnic_is_409(client, bank):  # noqa: F811
    cnic = valid_cnic()
    assert (
        post(
            client, "HBL", event("account.opened", account_opened(iban=IBAN, cnic=cnic))
        ).status_code
        == 201
    )
    again = post(client, "HBL", event("account.opened", account_opened(iban=IBAN, cnic=cnic)))
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    other = post(
        client, "HBL", event("account.opened", account_opened(iban=IBAN, cnic=valid_cnic()))
    )
    assert other.status_code == 409 and other.json()["error"] == "conflict"
    assert DollarAccount.objects.get().holder_cnic == cnic


def test_invalid_account_fields_answer_400(client, bank):  # noqa: F811
    data = account_opened(iban="PK00ABCD0000000000000000", cnic="12345")
    data.pop("opened_on")
    response = post(client, "HBL", event("account.opened", data))
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"data.iban", "data.cnic", "data.opened_on"}


def test_closure_of_an_unknown_account_is_kept_and_applied_on_opening(client, bank):  # noqa: F811
    closed = event("account.closed", {"iban": IBAN, "closed_on": "2024-06-30"})
    assert post(client, "HBL", closed).status_code == 201
    assert AccountClosure.objects.filter(iban=IBAN).exists()
    post(client, "HBL", event("account.opened", account_opened(iban=IBAN, cnic=valid_cnic())))
    assert DollarAccount.objects.get().closed_on == datetime.date(2024, 6, 30)


def test_closure_after_opening_closes_and_repeats_are_duplicates_or_conflicts(client, bank):  # noqa: F811
    post(client, "HBL", event("account.opened", account_opened(iban=IBAN, cnic=valid_cnic())))
    closed = {"iban": IBAN, "closed_on": "2024-06-30"}
    assert post(client, "HBL", event("account.closed", closed)).status_code == 201
    assert DollarAccount.objects.get().closed_on == datetime.date(2024, 6, 30)
    assert post(client, "HBL", event("account.closed", closed)).status_code == 200
    other = {"iban": IBAN, "closed_on": "2024-07-01"}
    assert post(client, "HBL", event("account.closed", other)).status_code == 409


def _events(cnic: str) -> list[dict]:
    return [
        event("account.opened", account_opened(iban=IBAN, cnic=cnic)),
        event("remittance.credited", remittance(reference="A1", iban=IBAN)),
        event("remittance.credited", remittance(reference="A2", iban=IBAN, amount="10.00")),
        event("remittance.reversed", {"reference": "A2", "reversed_on": "2024-03-30"}),
        event("account.closed", {"iban": IBAN, "closed_on": "2024-12-31"}),
    ]


def _state():
    return (
        sorted(
            Receipt.objects.values_list(
                "reference", "account__iban", "freelancer__cnic", "reversed_on"
            )
        ),
        list(DollarAccount.objects.values_list("iban", "freelancer__cnic", "closed_on")),
    )


@pytest.mark.parametrize("order", list(itertools.permutations(range(5)))[::7])
def test_any_order_and_repeats_leave_the_same_records(client, bank, order):  # noqa: F811
    freelancer = ApprovedFreelancerFactory()
    events = _events(freelancer.cnic)
    for index in order + order[:2]:  # every event, then two of them again
        assert post(client, "HBL", events[index]).status_code in (200, 201)
    receipts, accounts = _state()
    assert receipts == [
        ("A1", IBAN, freelancer.cnic, None),
        ("A2", IBAN, freelancer.cnic, datetime.date(2024, 3, 30)),
    ]
    assert accounts == [(IBAN, freelancer.cnic, datetime.date(2024, 12, 31))]


def test_sweep_links_and_reverses_what_was_left_behind(client, bank):  # noqa: F811
    freelancer = ApprovedFreelancerFactory()
    post(client, "HBL", event("account.opened", account_opened(iban=IBAN, cnic=freelancer.cnic)))
    post(client, "HBL", event("remittance.credited", remittance(reference="S1", iban=IBAN)))
    post(
        client,
        "HBL",
        event("remittance.reversed", {"reference": "S1", "reversed_on": "2024-04-01"}),
    )
    # Simulate work that never ran: links and the reversal undone behind the services' back.
    Receipt.objects.update(account=None, freelancer=None, reversed_on=None)
    DollarAccount.objects.update(freelancer=None)
    assert receipts_link_sweep() > 0
    receipt = Receipt.objects.get()
    assert receipt.freelancer == freelancer and receipt.account.iban == IBAN
    assert receipt.reversed_on == datetime.date(2024, 4, 1)
    assert receipts_link_sweep() == 0  # idempotent
