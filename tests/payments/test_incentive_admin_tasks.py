"""Admin actions call the services; the Celery tasks are routed to the batch queue and safe to
run twice; the sweep picks up a computation whose task never ran."""

import datetime
import time
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from config.celery import app
from payments.models import IncentivePayout, IncentiveScheme, PayoutBatch
from payments.tasks.incentives import incentive_compute, incentive_sweep
from tests.factories import (
    ApprovedFreelancerFactory,
    IncentiveSchemeFactory,
    PayoutAccountFactory,
    ReceiptFactory,
    StaffFactory,
)

pytestmark = pytest.mark.django_db
ADMIN = "/admin/payments/incentivescheme/"


def staff_with(*codenames):
    user = StaffFactory()
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def test_incentive_tasks_are_routed_to_the_batch_queue():
    for name in (incentive_compute.name, incentive_sweep.name):
        assert name.startswith("payments.tasks.incentives.incentive_")
        assert app.amqp.router.route({}, name)["queue"].name == "batch"


def _receipts(n=2):
    for _ in range(n):
        f = ApprovedFreelancerFactory()
        PayoutAccountFactory(freelancer=f)
        ReceiptFactory(freelancer=f, value_date=datetime.date(2024, 2, 1))


def test_admin_compute_approve_export_and_mark_paid_with_two_people(client):
    _receipts()
    scheme = IncentiveSchemeFactory()
    clerk = staff_with("view_incentivescheme", "change_incentivescheme")
    boss = staff_with("view_incentivescheme", "change_incentivescheme", "approve_incentive")

    client.force_login(clerk)
    client.post(ADMIN, {"action": "compute", "_selected_action": [scheme.pk]})
    scheme.refresh_from_db()  # Celery runs eagerly without Redis; with Redis see below
    if scheme.status == IncentiveScheme.Status.DRAFT:
        incentive_compute(scheme.pk)
        scheme.refresh_from_db()
    assert scheme.status == IncentiveScheme.Status.COMPUTED and scheme.computed_by == clerk

    client.post(ADMIN, {"action": "approve", "_selected_action": [scheme.pk]}, follow=True)
    scheme.refresh_from_db()
    assert scheme.status == IncentiveScheme.Status.COMPUTED  # four eyes refused the clerk

    client.force_login(boss)
    client.post(ADMIN, {"action": "approve", "_selected_action": [scheme.pk]})
    scheme.refresh_from_db()
    assert scheme.status == IncentiveScheme.Status.APPROVED

    export = {"action": "export_disbursement", "_selected_action": [scheme.pk]}
    response = client.post(ADMIN, export)
    assert response["Content-Type"] == "text/csv"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert lines[0] == "registration_number,name,iban,amount_pkr"
    assert len(lines) == 3 and lines[1].endswith(",14000.00")

    client.post(ADMIN, {"action": "mark_paid", "_selected_action": [scheme.pk]})
    scheme.refresh_from_db()
    assert scheme.status == IncentiveScheme.Status.PAID
    assert PayoutBatch.objects.get().status == PayoutBatch.Status.PAID
    assert IncentivePayout.objects.filter(paid_at__isnull=False).count() == 2


def test_admin_changelists_render(client):
    _receipts()
    scheme = IncentiveSchemeFactory()
    client.force_login(StaffFactory(is_superuser=True))
    from payments.services.incentives import scheme_compute

    scheme_compute(scheme_id=scheme.pk, by=None)
    for model in ("incentivescheme", "entitlement", "exclusion", "payoutbatch", "payoutaccount"):
        assert client.get(f"/admin/payments/{model}/").status_code == 200
    assert client.get(f"{ADMIN}{scheme.pk}/change/").status_code == 200


def test_compute_task_runs_a_pending_request_once_and_the_sweep_requeues_stale_ones(monkeypatch):
    monkeypatch.setitem(app.conf, "task_always_eager", True)
    _receipts(1)
    scheme = IncentiveSchemeFactory(
        compute_requested_at=timezone.now() - datetime.timedelta(hours=1),
        compute_requested_by=StaffFactory(),
    )
    assert incentive_sweep() == 1  # eager: the re-enqueued task ran
    scheme.refresh_from_db()
    assert scheme.status == IncentiveScheme.Status.COMPUTED and scheme.compute_requested_at is None
    assert incentive_compute(scheme.pk) == "nothing pending"
    assert incentive_sweep() == 0
    assert scheme.awarded_total_pkr == Decimal("14000.00")


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_requested_computation_runs_on_a_real_worker(celery_worker_session):
    from payments.models import PurposeCode
    from payments.services.incentives import scheme_request_compute

    code, _ = PurposeCode.objects.get_or_create(
        code="9182", defaults={"description": "Software consultancy", "category": "computer"}
    )
    ReceiptFactory(
        freelancer=ApprovedFreelancerFactory(),
        value_date=datetime.date(2024, 2, 1),
        purpose_code=code,
    )
    scheme = IncentiveSchemeFactory()
    clerk = staff_with("change_incentivescheme")
    scheme_request_compute(scheme_id=scheme.pk, by=clerk)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        scheme.refresh_from_db()
        if scheme.status == IncentiveScheme.Status.COMPUTED:
            break
        time.sleep(0.2)
    assert scheme.status == IncentiveScheme.Status.COMPUTED
    assert scheme.computed_by == clerk and scheme.eligible_count == 1
