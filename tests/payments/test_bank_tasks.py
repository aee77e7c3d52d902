"""The banks' periodic tasks: registered for beat, and run by a real worker (Redis)."""

import datetime

import pytest
from django.conf import settings

from payments.models import DollarAccount, Receipt
from payments.services.banks import account_open, purpose_code_set
from payments.tasks.banks import banks_link_sweep
from tests.factories import ApprovedFreelancerFactory, BankFactory, ReceiptFactory


def test_beat_schedule_names_registered_tasks():
    from config.celery import app

    app.loader.import_default_modules()
    for name in ("payments-banks-link-sweep", "payments-bank-deliveries-prune"):
        assert settings.CELERY_BEAT_SCHEDULE[name]["task"] in app.tasks


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_link_sweep_runs_on_a_real_worker(celery_worker_session):
    freelancer = ApprovedFreelancerFactory()
    account, _ = account_open(
        bank=BankFactory(),
        iban="PK36SCBL0000001123456702",
        currency="USD",
        cnic=freelancer.cnic,
        opened_on=datetime.date(2024, 1, 1),
    )
    # Transactional tests flush the database, seeded purpose codes included.
    code, _ = purpose_code_set(code="9182", description="Software consultancy", category="computer")
    ReceiptFactory(iban=account.iban, purpose_code=code)  # inserted behind the service's back
    DollarAccount.objects.filter(pk=account.pk).update(freelancer=None)
    assert banks_link_sweep.delay().get(timeout=60) >= 1
    receipt = Receipt.objects.get()
    assert receipt.account_id == account.pk and receipt.freelancer_id == freelancer.pk
