"""Faults in the middle of work: Redis down under webhook deliveries, the Celery worker SIGKILLed
in the middle of an aggregation and of an incentive computation, the operator's
``aggregate_statistics --full`` killed half-way. After recovery (the worker restarted as a
supervisor would, beat's sweeps firing) the books reconcile with no manual step.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.resilience.bankgen import sign, unix_now
from tests.resilience.conftest import events_size, require_feature
from tests.resilience.harness import PYTHON, ROOT, create_user, wait_until
from tests.resilience.seed import (
    monthly_from_api,
    months_of_receipts,
    seed_freelancers,
    seed_receipts,
    truth_monthly,
)
from tests.resilience.test_webhook_fuzz import valid_remittance

pytestmark = pytest.mark.resilience

BANK, SECRET = "OUTAGE1", "whsec-outage-0123456789"
FAULTS: list[str] = []


@pytest.fixture(scope="module")
def seeded(stack):
    require_feature("registry.services", "statistics (issue 7)")
    require_feature("payments.management.commands.add_bank", "bank webhooks (issue 4)")
    stack.manage("add_bank", BANK, "--name", "Outage bank", "--secret", SECRET)
    # Large enough that an aggregation or computation lasts long enough to be killed in the
    # middle: 60 receipts per bank event of the load run (300,000 by default).
    seed_freelancers(stack, max(500, events_size() // 2))
    seed_receipts(stack, 60 * events_size())
    stack.manage("aggregate_statistics", "--full")
    months = months_of_receipts(stack)
    return {"start": months[0].strftime("%Y-%m"), "end": months[-1].strftime("%Y-%m")}


def stale_periods(stack) -> int:
    return stack.db.scalar(
        "SELECT COUNT(*) FROM (SELECT DISTINCT kind, period FROM registry_statisticsstalemark) m"
    )


def mark_all_months_stale(stack) -> int:
    out = stack.shell(
        "from registry.services import statistics_mark_stale\n"
        "from payments.models import Receipt\n"
        "months = Receipt.objects.dates('value_date', 'month')\n"
        "print(statistics_mark_stale(months=list(months)))\n"
    )
    return int(out.strip().splitlines()[-1])


def converge(stack, check, *, timeout: float = 180, what: str) -> float:
    """Tick beat (as its schedule would, without waiting minutes) until ``check()`` is true."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic() - started
        stack.tick_beat()
        for _ in range(10):
            time.sleep(1)
            if check():
                return time.monotonic() - started
    raise AssertionError(f"no recovery within {timeout}s: {what}")


def post_event(stack, event: dict, timeout: float = 60) -> tuple[int, float]:
    body = json.dumps(event).encode()
    t = unix_now()
    started = time.monotonic()
    response = stack.request(
        "POST",
        f"/api/v1/webhooks/banks/{BANK}/",
        body=body,
        headers={
            "Content-Type": "application/json",
            "X-Bank-Signature": f"t={t},v1={sign(SECRET, t, body)}",
        },
        timeout=timeout,
    )
    return response.status, time.monotonic() - started


def test_webhook_accepts_deliveries_while_redis_is_down_and_statistics_catch_up(stack, seeded):
    events = [valid_remittance() for _ in range(3)]
    for event in events:
        event["data"]["value_date"] = f"{seeded['end']}-01"
    stack.redis.outage_stop()
    FAULTS.append("redis stopped under webhook deliveries")
    try:
        answers = [post_event(stack, event) for event in events]
    finally:
        stack.redis.start()
    statuses = [status for status, _ in answers]
    references = [e["data"]["reference"] for e in events]
    stored = stack.db.scalar(
        "SELECT COUNT(*) FROM payments_receipt WHERE reference = ANY(%s)", (references,)
    )
    assert stored == len(events), "a delivery was lost while Redis was down"
    # Recovery without a manual step: the stale months are picked up by beat's sweep.
    converge(stack, lambda: stale_periods(stack) == 0, what="stale statistics after redis outage")
    assert monthly_from_api(stack, seeded["start"], seeded["end"]) == truth_monthly(stack)
    assert statuses == [201] * len(events), (
        f"webhook answered {statuses} with Redis down (seconds: "
        f"{[round(s, 1) for _, s in answers]})"
    )


def test_worker_sigkilled_mid_aggregation_recovers_and_matches_full_rebuild(stack, seeded):
    initial = mark_all_months_stale(stack)
    assert stale_periods(stack) == initial
    sender = stack.shell_async(
        "from config.celery import app\napp.send_task('registry.tasks.statistics_refresh_task')\n"
    )
    wait_until(
        lambda: 0 < stale_periods(stack) < initial,
        timeout=120,
        interval=0.005,
        what="the aggregation to be half-way",
    )
    stack.kill_worker()
    FAULTS.append("worker SIGKILLed mid-aggregation")
    assert sender.wait(timeout=60) == 0
    left = stale_periods(stack)
    assert 0 < left < initial, "the kill did not land in the middle of the aggregation"
    stack.start_worker()  # what the process supervisor does
    converge(stack, lambda: stale_periods(stack) == 0, what="stale periods after worker kill")
    incremental = monthly_from_api(stack, seeded["start"], seeded["end"])
    assert incremental == truth_monthly(stack)
    stack.manage("aggregate_statistics", "--full")
    assert monthly_from_api(stack, seeded["start"], seeded["end"]) == incremental


def test_full_rebuild_killed_half_way_changes_nothing_and_a_rerun_matches(stack, seeded):
    before = monthly_from_api(stack, seeded["start"], seeded["end"])
    proc = subprocess.Popen(
        [PYTHON, "manage.py", "aggregate_statistics", "--full"],
        cwd=ROOT,
        env=stack.env(stack.CLI_APP),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # Kill it once its transaction has started writing (its backend is busy).
    wait_until(
        lambda: stack.db.scalar(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s"
            " AND state = 'active'",
            (stack.db.name, stack.CLI_APP),
        ),
        timeout=60,
        interval=0.01,
        what="aggregate_statistics to be running",
    )
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    FAULTS.append("aggregate_statistics --full SIGKILLed")
    wait_until(lambda: not stack.db.backend_pids(stack.CLI_APP), timeout=30, what="backend gone")
    assert monthly_from_api(stack, seeded["start"], seeded["end"]) == before
    stack.manage("aggregate_statistics", "--full")
    assert monthly_from_api(stack, seeded["start"], seeded["end"]) == truth_monthly(stack)


def scheme_state(stack, name: str) -> dict:
    out = stack.shell(
        "import json\n"
        "from payments.models import IncentiveScheme, Entitlement\n"
        f"s = IncentiveScheme.objects.get(name={name!r})\n"
        "rows = sorted((e.freelancer_id, str(e.proceeds_pkr), str(e.capped_amount_pkr),"
        " str(e.awarded_amount_pkr)) for e in Entitlement.objects.filter(scheme=s))\n"
        "print(json.dumps({'status': s.status, 'eligible': s.eligible_count, 'excluded':"
        " s.excluded_count, 'awarded': str(s.awarded_total_pkr), 'rows': rows,"
        " 'requested': s.compute_requested_at is not None, 'revision': s.revision}))\n"
    )
    return json.loads(out.strip().splitlines()[-1])


def create_scheme(stack, name: str, fiscal_year: str, budget: str | None) -> None:
    stack.shell(
        "from decimal import Decimal\n"
        "from payments.models import IncentiveScheme\n"
        f"IncentiveScheme.objects.create(name={name!r}, kind='cash_reward',"
        f" fiscal_year={fiscal_year!r}, rate_percent=Decimal('5'), basis='all',"
        " min_proceeds_usd=Decimal('100'),"
        f" fund_budget_pkr={f'Decimal({budget!r})' if budget else None})\n"
    )


def current_fiscal_year() -> str:
    import datetime

    today = datetime.date.today()
    first = today.year if today.month >= 7 else today.year - 1
    return f"{first}-{(first + 1) % 100:02d}"


def test_worker_sigkilled_mid_incentive_computation_recovers_with_same_figures(stack, seeded):
    require_feature("payments.services.incentives", "incentives (issue 6)")
    create_user(
        stack,
        "inc-computer",
        "Compute-Pass-1234!",
        staff=True,
        perms=["payments.change_incentivescheme", "payments.view_incentivescheme"],
    )
    name = "Resilience kill scheme"
    create_scheme(stack, name, current_fiscal_year(), "50000000.00")
    requester = stack.shell_async(
        "from django.contrib.auth import get_user_model\n"
        "from payments.models import IncentiveScheme\n"
        "from payments.services.incentives import scheme_request_compute\n"
        f"s = IncentiveScheme.objects.get(name={name!r})\n"
        "scheme_request_compute(scheme_id=s.pk,"
        " by=get_user_model().objects.get(username='inc-computer'))\n"
    )
    # The worker picks the task up: kill it as soon as the computation's transaction is running.
    wait_until(
        lambda: "incentive_compute" in stack.worker.log_text().rsplit(" ready.", 1)[-1],
        timeout=60,
        interval=0.005,
        what="the worker to receive incentive_compute",
    )
    stack.kill_worker()
    FAULTS.append("worker SIGKILLed mid-incentive computation")
    assert requester.wait(timeout=60) == 0
    state = scheme_state(stack, name)
    killed_mid_way = state["status"] == "draft" and state["requested"]
    stack.start_worker()
    # The sweep re-enqueues requests older than 15 minutes: age the request as the clock would.
    stack.db.query(
        "UPDATE payments_incentivescheme SET compute_requested_at = now() - interval '16 minutes'"
        " WHERE name = %s AND compute_requested_at IS NOT NULL",
        (name,),
    )
    converge(
        stack,
        lambda: scheme_state(stack, name)["status"] == "computed",
        what="the incentive computation after the worker kill",
    )
    recovered = scheme_state(stack, name)
    assert recovered["eligible"] > 0
    # Recomputing from scratch gives the same figures.
    stack.manage("compute_incentives", name)
    again = scheme_state(stack, name)
    assert again["rows"] == recovered["rows"]
    assert again["awarded"] == recovered["awarded"]
    assert killed_mid_way, "the worker finished the computation before the kill landed"


def test_fault_log_is_written(resilience_log_dir):
    (resilience_log_dir / "outage_faults.json").write_text(json.dumps(FAULTS, indent=2))
