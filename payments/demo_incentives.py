"""Demo incentives: a 5% rebate and a capped cash reward with a growth rule for the last complete
fiscal year, both computed over the demo receipts, the rebate approved (four eyes: computed by
``admin``, approved by ``approver``). Idempotent: an approved scheme is left as it is."""

import datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from freelancers.models import Freelancer
from payments.demo import make_iban
from payments.models import IncentiveScheme, PayoutAccount
from payments.selectors_incentives import fiscal_year_of, previous_fiscal_year
from payments.services.incentives import scheme_approve, scheme_compute


def last_complete_fiscal_year(today: datetime.date) -> str:
    return previous_fiscal_year(fiscal_year_of(today))


def load_incentives(freelancers: list[Freelancer]) -> list[str]:
    """Create, compute and (the rebate) approve the demo schemes; return lines to print."""
    User = get_user_model()
    computer = (
        User.objects.filter(username="admin").first()
        or User.objects.filter(is_superuser=True).first()
    )
    approver = User.objects.filter(username="approver").first()
    if approver is not None:
        approver.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="payments",
                codename__in=[
                    "approve_incentive",
                    "view_incentivescheme",
                    "change_incentivescheme",
                    "view_entitlement",
                    "view_exclusion",
                    "view_payoutbatch",
                ],
            )
        )
        approver = User.objects.get(pk=approver.pk)  # drop the cached permissions
    # Every other approved freelancer has a PKR payout account; the others' awards wait for one.
    for index, freelancer in enumerate(freelancers):
        if freelancer.status == Freelancer.Status.APPROVED and index % 2 == 0:
            PayoutAccount.objects.get_or_create(
                freelancer=freelancer,
                defaults={
                    "iban": make_iban("MEZN", 20_000 + index),
                    "account_title": freelancer.full_name,
                },
            )
    fiscal_year = last_complete_fiscal_year(timezone.localdate())
    rebate, _ = IncentiveScheme.objects.get_or_create(
        name=f"Export rebate {fiscal_year}",
        defaults={
            "kind": IncentiveScheme.Kind.REBATE,
            "fiscal_year": fiscal_year,
            "rate_percent": Decimal("5"),
            "basis": IncentiveScheme.Basis.ALL,
            "require_approved_before_receipt": True,
        },
    )
    reward, _ = IncentiveScheme.objects.get_or_create(
        name=f"Cash reward for growth {fiscal_year}",
        defaults={
            "kind": IncentiveScheme.Kind.CASH_REWARD,
            "fiscal_year": fiscal_year,
            "rate_percent": Decimal("2"),
            "basis": IncentiveScheme.Basis.ALL,
            "min_proceeds_usd": Decimal("10000"),
            "growth_required_percent": Decimal("10"),
            "cap_per_freelancer_pkr": Decimal("150000"),
            "fund_budget_pkr": Decimal("400000"),
        },
    )
    lines = []
    for scheme in (rebate, reward):
        if not scheme.is_frozen:
            scheme = scheme_compute(scheme_id=scheme.pk, by=computer)
        lines.append(
            f"  {scheme.name}: {scheme.eligible_count} eligible, {scheme.excluded_count} excluded, "
            f"PKR {scheme.awarded_total_pkr:,} awarded{' (scaled)' if scheme.scaled else ''}"
        )
    rebate.refresh_from_db()
    if rebate.status == IncentiveScheme.Status.COMPUTED and approver is not None:
        scheme_approve(scheme_id=rebate.pk, by=approver)
    lines.append(
        f"  The rebate is approved (computed by admin, approved by approver); sign in as "
        f"'approver' to approve '{reward.name}' in /admin/payments/incentivescheme/, then export "
        "and mark paid. Freelancers see theirs at /incentives/ and /api/v1/incentives/."
    )
    return lines
