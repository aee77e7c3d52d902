"""The suite's own tools, checked against an in-memory model of the webhook contract (fast; runs
in plain ``make test`` too): the generator's expectations, the sender and the resolver agree with
a straightforward implementation of the contract, so a failure of the real run is the portal's."""

import datetime
from decimal import Decimal

from stdnum import iban as iban_module
from stdnum.pk import cnic as cnic_module

from tests.resilience.bankgen import generate, order_report
from tests.resilience.contract_model import ContractModel, serve
from tests.resilience.sender import send_all


def test_generated_events_are_valid_per_contract_and_mixed_as_specified():
    traffic = generate(1000, seed=7, tag="G")
    assert traffic.unique_events == 1000
    for acct in traffic.accounts.values():
        assert iban_module.is_valid(acct.iban) and acct.iban.startswith("PK")
        assert cnic_module.is_valid(acct.cnic)
    for variants in traffic.remittances.values():
        for rem in variants.values():
            assert rem.amount > 0 and rem.amount == rem.amount.quantize(Decimal("0.01"))
            assert 0 <= rem.retained_amount <= rem.amount
            assert rem.value_date <= datetime.date.today() + datetime.timedelta(days=1)
    counts = traffic.counts
    assert counts["original"] == 1000
    assert counts["redelivery"] + counts["reformatted"] + counts["new_id"] == 300
    assert counts["conflict"] == 50
    assert counts["bad_signature"] + counts["stale"] + counts["phantom"] == 100
    order = order_report(traffic)
    assert order["reversal_before_remittance"] > 0
    assert order["remittance_before_account_opened"] > 0


def test_generator_expectations_hold_against_a_model_of_the_contract():
    traffic = generate(800, seed=11, tag="M")
    model = ContractModel(traffic.banks)
    server, url = serve(model)
    try:
        report = send_all(
            url,
            traffic.deliveries,
            secrets=traffic.banks,
            wrong_secret=traffic.wrong_secret,
            connections=16,
        )
    finally:
        server.shutdown()
    assert report.gave_up == 0
    assert traffic.check_statuses() == []
    resolved = traffic.resolve()
    assert set(model.receipts) == set(resolved)
    for key, rem in resolved.items():
        assert model.receipts[key]["amount"] == rem.amount
    assert set(model.accounts) == set(traffic.accounts)
    assert {k: datetime.date.fromisoformat(v) for k, v in model.reversed.items()} == (
        traffic.reversals
    )
    assert not set(model.receipts) & traffic.phantom_references
