"""Four-eyes approval, the disbursement file, marking paid, and races between them."""

import datetime
import threading
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.db import connection

from payments.models import Entitlement, IncentivePayout, IncentiveScheme, PayoutBatch, PurposeCode
from payments.selectors_incentives import disbursement_rows
from payments.services.incentives import (
    IncentiveError,
    batch_mark_paid,
    scheme_approve,
    scheme_compute,
    scheme_export_disbursement,
)
from tests.factories import (
    ApprovedFreelancerFactory,
    IncentiveSchemeFactory,
    PayoutAccountFactory,
    ReceiptFactory,
    StaffFactory,
)


def staff_with(*codenames):
    user = StaffFactory()
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)  # fresh instance: no cached permissions


def computer():
    return staff_with("change_incentivescheme")


def approver():
    return staff_with("approve_incentive", "change_incentivescheme")


def computed_scheme(n=3, budget=None, accounts=True, by=None):
    by = by or computer()
    scheme = IncentiveSchemeFactory(fund_budget_pkr=budget)
    # A transactional test flushes the codes the data migration seeded.
    code, _ = PurposeCode.objects.get_or_create(
        code="9182", defaults={"description": "Software consultancy", "category": "computer"}
    )
    for i in range(n):
        f = ApprovedFreelancerFactory()
        if accounts:
            PayoutAccountFactory(freelancer=f)
        ReceiptFactory(
            freelancer=f,
            amount=Decimal(1000 + i),
            value_date=datetime.date(2024, 2, 1),
            purpose_code=code,
        )
    return scheme_compute(scheme_id=scheme.pk, by=by, as_of=datetime.date(2024, 8, 1)), by


@pytest.mark.django_db
def test_the_person_who_computed_cannot_approve_even_with_the_permission():
    both = approver()
    scheme, _ = computed_scheme(by=both)
    with pytest.raises(IncentiveError, match="Four eyes"):
        scheme_approve(scheme_id=scheme.pk, by=both)
    approved = scheme_approve(scheme_id=scheme.pk, by=approver())
    assert approved.status == IncentiveScheme.Status.APPROVED
    assert approved.approved_by != both


@pytest.mark.django_db
def test_approval_needs_the_permission_a_named_computer_and_the_current_revision():
    scheme, _ = computed_scheme()
    with pytest.raises(PermissionDenied):
        scheme_approve(scheme_id=scheme.pk, by=StaffFactory())
    with pytest.raises(IncentiveError, match="recomputed"):
        scheme_approve(scheme_id=scheme.pk, by=approver(), revision=scheme.revision - 1)
    anonymous = scheme_compute(scheme_id=scheme.pk, by=None)
    with pytest.raises(IncentiveError, match="named"):
        scheme_approve(scheme_id=anonymous.pk, by=approver())


@pytest.mark.django_db
def test_approved_scheme_exports_a_file_once_and_is_paid_with_one_record_per_award():
    scheme, by = computed_scheme(n=3)
    no_account = ApprovedFreelancerFactory()
    ReceiptFactory(freelancer=no_account, value_date=datetime.date(2024, 2, 1))
    scheme = scheme_compute(scheme_id=scheme.pk, by=by)
    with pytest.raises(IncentiveError, match="approved"):
        scheme_export_disbursement(scheme_id=scheme.pk, by=by)
    scheme_approve(scheme_id=scheme.pk, by=approver())

    batch = scheme_export_disbursement(scheme_id=scheme.pk, by=by)
    assert batch.payouts_count == 3
    rows = list(disbursement_rows(batch=batch))
    assert len(rows) == 3 and all(r[0].startswith("PSEB-F-") and r[2][:2] == "PK" for r in rows)
    assert sum(r[3] for r in rows) == batch.total_pkr
    assert scheme_export_disbursement(scheme_id=scheme.pk, by=by) is None  # nothing left

    batch_mark_paid(batch_id=batch.pk, by=by)
    with pytest.raises(IncentiveError, match="already"):
        batch_mark_paid(batch_id=batch.pk, by=by)
    scheme.refresh_from_db()
    assert scheme.status == IncentiveScheme.Status.APPROVED  # one award still has no account

    PayoutAccountFactory(freelancer=no_account)
    second = scheme_export_disbursement(scheme_id=scheme.pk, by=by)
    assert second.payouts_count == 1
    batch_mark_paid(batch_id=second.pk, by=by)
    scheme.refresh_from_db()
    assert scheme.status == IncentiveScheme.Status.PAID
    assert IncentivePayout.objects.filter(scheme=scheme, paid_at__isnull=False).count() == 4
    with pytest.raises(IncentiveError, match="frozen"):
        scheme_compute(scheme_id=scheme.pk, by=by)


def _race(n, target):
    """Run target(i) in n threads started together; return (results, errors)."""
    barrier = threading.Barrier(n)
    results, errors = [], []

    def run(i):
        try:
            barrier.wait()
            results.append(target(i))
        except Exception as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_approvals_approve_once():
    scheme, _ = computed_scheme()
    approvers = [approver() for _ in range(4)]
    results, errors = _race(4, lambda i: scheme_approve(scheme_id=scheme.pk, by=approvers[i]))
    assert len(results) == 1
    assert len(errors) == 3 and all(isinstance(e, IncentiveError) for e in errors)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_racing_exports_and_payments_never_pay_an_award_twice_or_beyond_the_budget():
    scheme, by = computed_scheme(n=6, budget=Decimal("1000.00"))
    scheme_approve(scheme_id=scheme.pk, by=approver())
    results, errors = _race(4, lambda i: scheme_export_disbursement(scheme_id=scheme.pk, by=by))
    assert not errors
    batches = [b for b in results if b is not None]
    assert len(batches) == 1
    assert IncentivePayout.objects.filter(scheme=scheme).count() == 6
    total = sum(IncentivePayout.objects.filter(scheme=scheme).values_list("amount_pkr", flat=True))
    assert total == Decimal("1000.00")

    results, errors = _race(4, lambda i: batch_mark_paid(batch_id=batches[0].pk, by=by))
    assert len(results) == 1 and len(errors) == 3
    assert PayoutBatch.objects.get().status == PayoutBatch.Status.PAID
    assert Entitlement.objects.filter(scheme=scheme, payout__paid_at__isnull=False).count() == 6
