"""The one-statement path for a new remittance (PostgreSQL) leaves exactly the rows, and gives
exactly the answers, of the general path (``_store`` -> ``receipt_record``)."""

import json
import os

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.models import (
    BankEvent,
    PurposeCode,
    Receipt,
    ReceiptReversal,
    WebhookDelivery,
)
from payments.services import bank_webhooks, remittance_insert
from payments.services.banks import bank_credentials
from payments.services.remittance_insert import remittance_insert_new
from registry.models import StatisticsStaleMark
from tests.factories import ApprovedFreelancerFactory, DollarAccountFactory
from tests.payments.bank_helpers import bank, event, post, remittance  # noqa: F401

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


DELIVERY = {
    "bank_code": "HBL",
    "remote_addr": "127.0.0.1",
    "signature_header": "t=1,v1=0",
    "content_type": "application/json",
    "content_length": 2,
    "user_agent": "",
    "body": "{}",
    "body_truncated": False,
    "body_sha256": "",
}


def rows() -> dict:
    """Everything a delivery leaves, without ids and clocks (which differ between two runs)."""
    receipts = {r.pk: r.reference for r in Receipt.objects.all()}
    return {
        "receipts": sorted(
            Receipt.objects.values_list(
                "source",
                "bank__code",
                "reference",
                "iban",
                "account__iban",
                "freelancer__cnic",
                "amount",
                "currency",
                "usd_amount",
                "pkr_rate",
                "value_date",
                "purpose_code__code",
                "retained_amount",
                "tax_withheld_pkr",
                "remitter_name",
                "remitter_country",
                "reversed_on",
                "reversal_reason",
            )
        ),
        "events": sorted(
            (e.event_id, e.type, e.created, e.data, e.outcome, e.delivery.response_status)
            for e in BankEvent.objects.select_related("delivery")
        ),
        "deliveries": sorted(
            WebhookDelivery.objects.values_list(
                "bank__code",
                "bank_code",
                "signature_verdict",
                "outcome",
                "response_status",
                "event_id",
                "event_type",
                "body",
                "body_truncated",
                "body_sha256",
                "content_type",
                "content_length",
                "detail",
            )
        ),
        "marks": sorted(
            (m.kind, m.period, receipts.get(m.receipt_id))
            for m in StatisticsStaleMark.objects.all()
        ),
    }


def clear() -> None:
    StatisticsStaleMark.objects.all().delete()
    BankEvent.objects.all().delete()
    WebhookDelivery.objects.all().delete()
    Receipt.objects.all().delete()


def general_path_only(monkeypatch) -> None:
    monkeypatch.setattr(bank_webhooks, "_store_new_remittance", lambda *args: None)


def replay(client, monkeypatch, deliveries: list[dict], setup=None) -> tuple[list, dict]:
    """Post ``deliveries`` on both paths from the same starting rows; the answers and the rows
    left must be the same."""
    outcomes = []
    for general in (False, True):
        clear()
        if setup:
            setup()
        if general:
            general_path_only(monkeypatch)
        answers = [(r.status_code, r.json()) for r in (post(client, "HBL", d) for d in deliveries)]
        outcomes.append((answers, rows()))
    assert outcomes[0][0] == outcomes[1][0]
    assert outcomes[0][1] == outcomes[1][1]
    return outcomes[0]


def test_new_remittance_to_a_known_account_is_linked_the_same_way(client, bank, monkeypatch):  # noqa: F811
    freelancer = ApprovedFreelancerFactory()
    account = DollarAccountFactory(freelancer=freelancer, bank=bank)
    answers, left = replay(
        client,
        monkeypatch,
        [event("remittance.credited", remittance(iban=account.iban, retained_amount="100.50"))],
    )
    assert answers[0][0] == 201
    assert left["receipts"][0][4:6] == (account.iban, freelancer.cnic)
    assert len(left["marks"]) == 2  # the month and its fiscal year, naming the receipt


def test_new_remittance_to_an_unknown_iban_stays_unmatched_the_same_way(client, bank, monkeypatch):  # noqa: F811
    answers, left = replay(client, monkeypatch, [event("remittance.credited", remittance())])
    assert answers[0][0] == 201 and left["receipts"][0][4:6] == (None, None)


def test_reversal_that_came_first_is_applied_the_same_way(client, bank, monkeypatch):  # noqa: F811
    data = remittance()

    reversal = event(
        "remittance.reversed",
        {"reference": data["reference"], "reversed_on": "2024-03-20", "reason": "recalled"},
    )

    def reversal_first():
        ReceiptReversal.objects.all().delete()
        assert post(client, "HBL", reversal).status_code == 201

    answers, left = replay(
        client, monkeypatch, [event("remittance.credited", data)], setup=reversal_first
    )
    assert answers[0][0] == 201
    assert str(left["receipts"][0][16]) == "2024-03-20" and left["receipts"][0][17] == "recalled"


def test_redeliveries_and_conflicts_answer_the_same_way(client, bank, monkeypatch):  # noqa: F811
    first = event("remittance.credited", remittance())
    same_reference = event("remittance.credited", dict(first["data"]))
    other_content = dict(first, data={**first["data"], "amount": "1.00"})
    other_reference = event("remittance.credited", {**first["data"], "amount": "2.00"})
    answers, _ = replay(
        client,
        monkeypatch,
        [first, first, same_reference, other_content, other_reference],
    )
    assert [status for status, _ in answers] == [201, 200, 200, 409, 409]


def test_a_redelivery_longer_than_the_kept_body_is_logged_the_same_way(client, bank, monkeypatch):  # noqa: F811
    first = event("remittance.credited", remittance())
    # White space the contract allows, past the limit a duplicate's logged body is cut at.
    padded = json.dumps(first, indent=400).encode()
    assert len(padded) > WebhookDelivery.REJECTED_BODY_LIMIT

    def deliver(raw: bytes) -> int:
        return post(client, "HBL", None, raw=raw).status_code

    outcomes = []
    for general in (False, True):
        clear()
        if general:
            general_path_only(monkeypatch)
        outcomes.append(([deliver(padded), deliver(padded)], rows()))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == [201, 200]
    kept = {row[3]: (len(row[7]), row[8]) for row in outcomes[0][1]["deliveries"]}
    assert kept == {"accepted": (len(padded), False), "duplicate": (4096, True)}


def test_a_redelivery_is_logged_by_the_statement_itself(client, bank):  # noqa: F811
    first = event("remittance.credited", remittance())
    assert post(client, "HBL", first).status_code == 201
    with CaptureQueriesContext(connection) as queries:
        assert post(client, "HBL", first).status_code == 200
    statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == 3, statements  # the lock, the statement, the marks (none written)
    assert list(
        WebhookDelivery.objects.order_by("id").values_list("outcome", "response_status")
    ) == [("accepted", 201), ("duplicate", 200)]
    assert (
        BankEvent.objects.count() == 1
        and not StatisticsStaleMark.objects.filter(receipt_id__isnull=True).exists()
    )


def test_unknown_and_retired_purpose_codes_answer_400_the_same_way(client, bank, monkeypatch):  # noqa: F811
    PurposeCode.objects.create(code="9999", description="Retired", category="Other", retired=True)
    answers, left = replay(
        client,
        monkeypatch,
        [
            event("remittance.credited", remittance(purpose_code="9999")),
            event("remittance.credited", remittance(purpose_code="0000", amount="x")),
        ],
    )
    assert [status for status, _ in answers] == [400, 400]
    assert "data.purpose_code" in answers[0][1]["fields"]
    assert set(answers[1][1]["fields"]) == {"data.purpose_code", "data.amount"}
    assert left["receipts"] == [] and left["events"] == []
    assert PurposeCode.objects.get(code="9999").retired


def test_redelivery_after_its_purpose_code_was_retired_answers_400_the_same_way(
    client,
    bank,  # noqa: F811
    monkeypatch,
):
    code = PurposeCode.objects.create(code="9998", description="Soon retired", category="Other")
    first = event("remittance.credited", remittance(purpose_code="9998"))

    def recorded_then_retired():
        PurposeCode.objects.filter(pk=code.pk).update(retired=False)
        assert post(client, "HBL", first).status_code == 201
        PurposeCode.objects.filter(pk=code.pk).update(retired=True)

    answers, _ = replay(client, monkeypatch, [first], setup=recorded_then_retired)
    # Checks run in the contract's order: the body (400) before a duplicate (200).
    assert answers[0][0] == 400 and "data.purpose_code" in answers[0][1]["fields"]


def test_a_new_remittance_costs_one_statement_after_the_lock(client, bank):  # noqa: F811
    assert post(client, "HBL", event("remittance.credited", remittance())).status_code == 201
    with CaptureQueriesContext(connection) as queries:
        assert post(client, "HBL", event("remittance.credited", remittance())).status_code == 201
    statements = [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]]
    # The lock and the statement (one round trip), then the statistics marks; the bank and its
    # secrets were kept from the first delivery.
    assert len(statements) == 3, statements
    assert "pg_advisory_xact_lock" in statements[0] and "INSERT INTO" in statements[1]
    assert Receipt.objects.count() == 2
    assert set(BankEvent.objects.values_list("delivery__response_status", flat=True)) == {201}


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_marks_and_the_commit_go_in_the_same_round_trip(client, bank):  # noqa: F811
    assert post(client, "HBL", event("remittance.credited", remittance())).status_code == 201
    data = remittance()
    with CaptureQueriesContext(connection) as queries:
        assert post(client, "HBL", event("remittance.credited", data)).status_code == 201
    statements = [q["sql"] for q in queries]
    # The lock, the statement, the marks and COMMIT, sent together. Django logs BEGIN and COMMIT
    # for its atomic block, but psycopg sends neither by itself: BEGIN goes with the batch, and
    # the block's commit finds the transaction already closed. What follows is the statistics
    # refresh the commit started (Celery runs eagerly in the tests).
    assert statements[0] == "BEGIN" and statements[5] == "COMMIT", statements
    assert all(sql.endswith("-- prepared, batched") for sql in statements[1:5]), statements
    assert "pg_advisory_xact_lock" in statements[1] and "INSERT INTO" in statements[2]
    assert "statisticsstalemark" in statements[3] and statements[4].startswith("COMMIT")
    assert not any("batched" in sql for sql in statements[6:])
    # Committed for real: another connection sees the receipt.
    import psycopg

    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"], port=settings["PORT"]
    ) as other:
        seen = other.execute(
            f"SELECT count(*) FROM {Receipt._meta.db_table} WHERE reference = %s",  # noqa: S608
            [data["reference"]],
        ).fetchone()
    assert seen == (1,)
    # What the statement does not record commits nothing of its own: a redelivery (answered by
    # the shortcut), and the same reference under a new event id (answered by the general path,
    # which stores the event as a duplicate).
    receipts, events = Receipt.objects.count(), BankEvent.objects.count()
    assert post(client, "HBL", event("remittance.credited", data)).status_code == 200
    first = event("remittance.credited", remittance())
    assert post(client, "HBL", first).status_code == 201
    assert post(client, "HBL", first).status_code == 200
    assert (Receipt.objects.count(), BankEvent.objects.count()) == (receipts + 1, events + 2)


def test_the_statement_writes_nothing_when_it_records_nothing(client, bank):  # noqa: F811
    first = event("remittance.credited", remittance())
    assert post(client, "HBL", first).status_code == 201
    StatisticsStaleMark.objects.all().delete()
    before = rows()
    # The same reference under a new event id: not recorded by the statement (the general path
    # then answers 200); no event, receipt, delivery or mark is left by the statement itself.
    again, _ = bank_webhooks.event_parse(
        body=json.dumps(event("remittance.credited", dict(first["data"]))).encode()
    )
    with transaction.atomic():
        outcome = remittance_insert_new(
            bank_id=bank.pk,
            event_id=again.id,
            created=again.created,
            data=again.data,
            now=timezone.now(),
            delivery=DELIVERY,
        )
    assert outcome.receipt_id is None and not outcome.duplicate
    assert rows() == before


def test_an_id_already_used_falls_back_to_the_general_path(client, bank, monkeypatch):  # noqa: F811
    assert post(client, "HBL", event("remittance.credited", remittance())).status_code == 201
    used = Receipt.objects.get().pk
    # As if the sequence had been reset under this process: the receipt insert fails on the
    # primary key, nothing of the statement commits, and the general path records the delivery.
    key = (os.getpid(), connection.settings_dict["NAME"])
    monkeypatch.setitem(remittance_insert._receipt_ids, key, [used])
    data = remittance()
    assert post(client, "HBL", event("remittance.credited", data)).status_code == 201
    assert Receipt.objects.filter(reference=data["reference"]).exclude(pk=used).count() == 1
    assert BankEvent.objects.count() == 2 and WebhookDelivery.objects.count() == 2


# A kept connection, as the next request finds it: Django's request_started handler sets
# health_check_done = False (the test client does not run that handler, so the tests do).
def kept_connection_for_a_new_request(monkeypatch) -> list[int]:
    """Mark the connection as a request's first use and count Django's health checks."""
    connection.ensure_connection()
    assert connection.health_check_enabled  # CONN_HEALTH_CHECKS in config/settings/base.py
    connection.health_check_done = False
    checks: list[int] = []
    real = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or real())
    return checks


def stored() -> tuple[int, int, int]:
    return (
        Receipt.objects.count(),
        BankEvent.objects.count(),
        WebhookDelivery.objects.filter(outcome="accepted").count(),
    )


@pytest.mark.django_db(transaction=True)
def test_a_new_remittance_skips_the_health_check_round_trip(client, bank, monkeypatch):  # noqa: F811
    bank_credentials(code="HBL")  # kept by the process: the insert is the request's first query
    checks = kept_connection_for_a_new_request(monkeypatch)
    response = post(client, "HBL", event("remittance.credited", remittance()))
    assert response.status_code == 201
    assert checks == []  # Django would have sent SELECT 1 before the transaction
    assert stored() == (1, 1, 1)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("first_query", ["bank", "insert"])
def test_a_connection_the_server_closed_is_replaced_and_the_delivery_stored_once(
    client,
    bank,  # noqa: F811
    monkeypatch,
    first_query,
):
    if first_query == "insert":  # else not kept (tests/conftest.py forgets before each test)
        bank_credentials(code="HBL")  # kept: the insert finds the connection broken
    checks = kept_connection_for_a_new_request(monkeypatch)
    # The server ends the kept connection's backend (a restart, an idle timeout).
    victim = connection.connection.info.backend_pid
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [victim])
            assert cursor.fetchone() == (True,)
    finally:
        other.close()
    delivery = event("remittance.credited", remittance())
    response = post(client, "HBL", delivery)
    assert response.status_code == 201, response.content
    assert len(checks) <= 1  # at most once, after the broken connection failed
    assert connection.connection.info.backend_pid != victim
    assert stored() == (1, 1, 1)
    assert post(client, "HBL", delivery).status_code == 200  # a redelivery, still stored once
    assert stored() == (1, 1, 1)
