"""The demo loads two computed incentive schemes, one approved, and is safe to run twice."""

import pytest
from django.core.management import call_command

from payments.models import Entitlement, IncentiveScheme


@pytest.mark.django_db
def test_demo_has_a_rebate_approved_by_a_second_person_and_a_scaled_cash_reward():
    call_command("load_demo", stdout=open("/dev/null", "w"))
    rebate = IncentiveScheme.objects.get(kind=IncentiveScheme.Kind.REBATE)
    reward = IncentiveScheme.objects.get(kind=IncentiveScheme.Kind.CASH_REWARD)
    assert rebate.status == IncentiveScheme.Status.APPROVED
    assert rebate.computed_by.username == "admin" and rebate.approved_by.username == "approver"
    assert reward.status == IncentiveScheme.Status.COMPUTED and reward.eligible_count > 0
    assert reward.awarded_total_pkr <= reward.fund_budget_pkr
    fields = ("scheme", "freelancer", "awarded_amount_pkr")
    figures = sorted(Entitlement.objects.values_list(*fields))

    call_command("load_demo", stdout=open("/dev/null", "w"))
    assert IncentiveScheme.objects.count() == 2
    assert sorted(Entitlement.objects.values_list(*fields)) == figures
