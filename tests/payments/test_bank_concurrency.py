"""Concurrent deliveries from many connections: one record each, never a 500 (both databases)."""

import threading

import pytest
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from payments.models import BankEvent, Receipt, WebhookDelivery
from payments.services.banks import purpose_code_set
from tests.factories import BankFactory, BankSecretFactory
from tests.payments.bank_helpers import SECRET, bank, event, post, remittance  # noqa: F401


def _fire(payloads: list[dict]) -> list[int]:
    barrier = threading.Barrier(len(payloads))
    statuses: list[int] = [0] * len(payloads)

    def deliver(index: int) -> None:
        try:
            client = Client()
            barrier.wait()
            statuses[index] = post(client, "HBL", payloads[index]).status_code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(payloads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def _bank():
    # Transactional tests flush the database, seeded purpose codes included.
    purpose_code_set(code="9182", description="Software consultancy", category="computer")
    BankSecretFactory(bank=BankFactory(code="HBL"), secret=SECRET)


@pytest.mark.django_db(transaction=True)
def test_same_remittance_from_20_threads_stores_one_receipt():
    _bank()
    payload = event("remittance.credited", remittance(reference="RACE1"))
    statuses = _fire([payload] * 20)
    assert sorted(statuses) == [200] * 19 + [201]
    assert Receipt.objects.filter(reference="RACE1").count() == 1
    assert BankEvent.objects.count() == 1
    assert WebhookDelivery.objects.count() == 20


@pytest.mark.django_db(transaction=True)
def test_same_reference_under_20_event_ids_stores_one_receipt():
    _bank()
    data = remittance(reference="RACE2")
    statuses = _fire([event("remittance.credited", dict(data)) for _ in range(20)])
    assert sorted(statuses) == [200] * 19 + [201]
    assert Receipt.objects.filter(reference="RACE2").count() == 1


@pytest.mark.django_db(transaction=True)
def test_conflicting_deliveries_at_once_store_one_and_answer_409_to_the_others():
    _bank()
    payloads = [
        event("remittance.credited", remittance(reference="RACE3", amount=f"{100 + i}.00"))
        for i in range(10)
    ]
    statuses = _fire(payloads)
    assert sorted(statuses) == [201] + [409] * 9
    assert Receipt.objects.filter(reference="RACE3").count() == 1


@pytest.mark.django_db(transaction=True)
def test_remittance_and_its_reversal_at_once_end_reversed():
    _bank()
    for n in range(5):
        reference = f"RACE-R{n}"
        statuses = _fire(
            [
                event("remittance.credited", remittance(reference=reference)),
                event("remittance.reversed", {"reference": reference, "reversed_on": "2024-04-01"}),
            ]
        )
        assert statuses == [201, 201]
        assert Receipt.objects.get(reference=reference).reversed_on is not None


@pytest.mark.django_db(transaction=True)
def test_many_different_remittances_at_once_are_all_accepted():
    _bank()
    statuses = _fire([event("remittance.credited", remittance()) for _ in range(20)])
    assert statuses == [201] * 20
    assert Receipt.objects.count() == 20


@pytest.mark.django_db
def test_one_delivery_costs_a_small_constant_number_of_queries(client, bank):  # noqa: F811
    post(client, "HBL", event("remittance.credited", remittance()))  # warm up
    counts = []
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            response = post(client, "HBL", event("remittance.credited", remittance()))
        assert response.status_code == 201
        counts.append(len(queries))
    assert len(set(counts)) == 1
    assert counts[0] <= 12, [q["sql"] for q in queries.captured_queries]


@pytest.mark.django_db(transaction=True)
def test_same_account_opened_from_10_threads_stores_one_account():
    from payments.models import DollarAccount
    from tests.factories import valid_cnic
    from tests.payments.bank_helpers import account_opened

    _bank()
    payload = event("account.opened", account_opened(iban=remittance()["iban"], cnic=valid_cnic()))
    statuses = _fire([payload] * 10)
    assert sorted(statuses) == [200] * 9 + [201]
    assert DollarAccount.objects.count() == 1
