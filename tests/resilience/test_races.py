"""Races between separate processes: two Celery workers and the operator's command aggregating
at once, two approvers approving the same incentive scheme at once, two exports and two
"mark paid" of the same fund at once. Figures identical, no fund overspent, no entitlement paid
twice."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.resilience.bankgen import make_iban
from tests.resilience.conftest import events_size, require_feature
from tests.resilience.harness import PYTHON, ROOT, create_user, wait_until
from tests.resilience.seed import (
    monthly_from_api,
    months_of_receipts,
    seed_freelancers,
    seed_receipts,
    truth_monthly,
)
from tests.resilience.test_outages import converge, create_scheme, current_fiscal_year

pytestmark = pytest.mark.resilience

SCHEME = "Resilience race scheme"
BUDGET = "20000000.00"


@pytest.fixture(scope="module")
def seeded(stack):
    require_feature("registry.services", "statistics (issue 7)")
    require_feature("payments.services.incentives", "incentives (issue 6)")
    seed_freelancers(stack, max(300, events_size() // 5))
    seed_receipts(stack, 20 * events_size())
    stack.manage("aggregate_statistics", "--full")
    months = months_of_receipts(stack)
    return {"start": months[0].strftime("%Y-%m"), "end": months[-1].strftime("%Y-%m")}


def race(stack, snippets: list[str], *, delay: float = 5.0) -> list[str]:
    """Run each snippet in its own ``manage.py shell`` process, all released at the same instant
    (after Django has started in each); return what each printed last (or its error)."""
    go = time.time() + delay
    procs = [
        subprocess.Popen(
            [
                PYTHON,
                "manage.py",
                "shell",
                "--no-startup",
                "-c",
                f"import time\ntime.sleep(max(0, {go} - time.time()))\n{code}",
            ],
            cwd=ROOT,
            env=stack.env(stack.CLI_APP),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for code in snippets
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        lines = out.strip().splitlines()
        outputs.append(lines[-1] if lines else f"exit {proc.returncode}: {err[-500:]}")
    return outputs


def stale_periods(stack) -> int:
    return stack.db.scalar(
        "SELECT COUNT(*) FROM (SELECT DISTINCT kind, period FROM registry_statisticsstalemark) m"
    )


def test_two_workers_and_the_command_aggregating_at_once_give_identical_figures(stack, seeded):
    stack.add_worker("worker2")
    stack.shell(
        "from registry.services import statistics_mark_stale\n"
        "from payments.models import Receipt\n"
        "statistics_mark_stale(months=list(Receipt.objects.dates('value_date', 'month')))\n"
    )
    outputs = race(
        stack,
        [
            "from config.celery import app\n"
            "for _ in range(3): app.send_task('registry.tasks.statistics_refresh_task')\n"
            "print('sent')",
            "from django.core.management import call_command\n"
            "call_command('aggregate_statistics', '--no-progress')\nprint('ran')",
            "from django.core.management import call_command\n"
            "call_command('aggregate_statistics', '--no-progress')\nprint('ran')",
        ],
    )
    assert outputs == ["sent", "ran", "ran"], outputs
    converge(stack, lambda: stale_periods(stack) == 0, what="stale periods after the race")
    truth = truth_monthly(stack)
    assert monthly_from_api(stack, seeded["start"], seeded["end"]) == truth
    # Two full rebuilds at once: both finish, figures unchanged.
    outputs = race(
        stack,
        [
            "from django.core.management import call_command\n"
            "call_command('aggregate_statistics', '--full', '--no-progress')\nprint('full')",
        ]
        * 2,
    )
    assert outputs == ["full", "full"], outputs
    assert monthly_from_api(stack, seeded["start"], seeded["end"]) == truth


def scheme_snippet(body: str) -> str:
    return (
        "from django.contrib.auth import get_user_model\n"
        "from payments.models import IncentiveScheme\n"
        "from payments.services import incentives as svc\n"
        "User = get_user_model()\n"
        f"scheme = IncentiveScheme.objects.get(name={SCHEME!r})\n"
        "try:\n"
        f"    {body}\n"
        "except Exception as exc:\n"
        "    print('refused', type(exc).__name__)\n"
    )


@pytest.fixture(scope="module")
def computed_scheme(stack, seeded):
    manage = ["payments.change_incentivescheme", "payments.view_incentivescheme"]
    approve = [*manage, "payments.approve_incentive"]
    create_user(stack, "race-computer", "Race-Pass-1234!", staff=True, perms=approve)
    create_user(stack, "race-approver-1", "Race-Pass-1234!", staff=True, perms=approve)
    create_user(stack, "race-approver-2", "Race-Pass-1234!", staff=True, perms=approve)
    create_scheme(stack, SCHEME, current_fiscal_year(), BUDGET)
    stack.manage("compute_incentives", SCHEME, "--user", "race-computer")
    # A PKR payout account for every seeded freelancer (bulk: 1 statement).
    stack.shell(
        "from freelancers.models import Freelancer\n"
        "from payments.models import PayoutAccount\n"
        "from tests.resilience.bankgen import make_iban\n"
        "PayoutAccount.objects.bulk_create([PayoutAccount(freelancer=f,"
        " iban=make_iban('MEZN', 100000 + f.pk), account_title=f.full_name)"
        " for f in Freelancer.objects.filter(registration_number__startswith='SEED-')],"
        " ignore_conflicts=True)\n"
    )
    assert make_iban("MEZN", 1).startswith("PK")
    return SCHEME


def test_the_computer_cannot_approve_their_own_computation(stack, computed_scheme):
    out = stack.shell(
        scheme_snippet(
            "svc.scheme_approve(scheme_id=scheme.pk, by=User.objects.get(username="
            "'race-computer')); print('approved')"
        )
    )
    assert out.strip().splitlines()[-1] == "refused IncentiveError"


def test_two_approvals_racing_exactly_one_wins(stack, computed_scheme):
    outputs = race(
        stack,
        [
            scheme_snippet(
                f"svc.scheme_approve(scheme_id=scheme.pk, by=User.objects.get(username="
                f"'race-approver-{i}')); print('approved')"
            )
            for i in (1, 2)
        ],
    )
    assert sorted(outputs) == ["approved", "refused IncentiveError"], outputs
    status, approver = stack.db.query(
        "SELECT s.status, u.username FROM payments_incentivescheme s "
        "JOIN auth_user u ON u.id = s.approved_by_id WHERE s.name = %s",
        (SCHEME,),
    )[0]
    assert status == "approved"
    assert approver == f"race-approver-{outputs.index('approved') + 1}"


def test_two_exports_and_two_mark_paid_racing_never_pay_twice_or_overspend(stack, computed_scheme):
    outputs = race(
        stack,
        [
            scheme_snippet(
                "batch = svc.scheme_export_disbursement(scheme_id=scheme.pk,"
                " by=User.objects.get(username='race-approver-1'));"
                " print('batch' if batch else 'nothing')"
            )
        ]
        * 2,
    )
    assert sorted(outputs) in (["batch", "nothing"], ["batch", "refused IncentiveError"]), outputs
    rows = stack.db.query(
        "SELECT COUNT(*), COUNT(DISTINCT p.entitlement_id), COALESCE(SUM(p.amount_pkr), 0),"
        " s.fund_budget_pkr, s.awarded_total_pkr FROM payments_incentivepayout p"
        " JOIN payments_incentivescheme s ON s.id = p.scheme_id WHERE s.name = %s"
        " GROUP BY s.fund_budget_pkr, s.awarded_total_pkr",
        (SCHEME,),
    )
    count, distinct, paid, budget, awarded = rows[0]
    assert count == distinct, "an entitlement was exported twice"
    assert paid <= budget, f"paid {paid} over the budget {budget}"
    assert paid == awarded
    awarded_count = stack.db.scalar(
        "SELECT COUNT(*) FROM payments_entitlement e JOIN payments_incentivescheme s"
        " ON s.id = e.scheme_id WHERE s.name = %s AND e.awarded_amount_pkr > 0",
        (SCHEME,),
    )
    assert count == awarded_count
    batch_id = stack.db.scalar(
        "SELECT b.id FROM payments_payoutbatch b JOIN payments_incentivescheme s"
        " ON s.id = b.scheme_id WHERE s.name = %s",
        (SCHEME,),
    )
    outputs = race(
        stack,
        [
            scheme_snippet(
                f"svc.batch_mark_paid(batch_id={batch_id},"
                " by=User.objects.get(username='race-approver-2')); print('paid')"
            )
        ]
        * 2,
    )
    assert sorted(outputs) == ["paid", "refused IncentiveError"], outputs
    wait_until(
        lambda: (
            stack.db.scalar(
                "SELECT status FROM payments_incentivescheme WHERE name = %s", (SCHEME,)
            )
            == "paid"
        ),
        timeout=10,
        what="scheme paid",
    )
    assert json.dumps(outputs)
