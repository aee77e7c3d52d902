"""Computing a scheme: which receipts count, the rules in order, the figures, recomputation."""

import datetime
import random
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.core.management import call_command

from freelancers.models import Freelancer
from payments.models import Entitlement, Exclusion, IncentiveScheme, PurposeCode, Receipt
from payments.services.incentives import IncentiveError, scheme_compute
from tests.factories import (
    ApprovedFreelancerFactory,
    DollarAccountFactory,
    IncentiveSchemeFactory,
    ReceiptFactory,
    StaffFactory,
    purpose_code,
)

pytestmark = pytest.mark.django_db
CUR = datetime.date(2024, 3, 15)  # fiscal year 2023-24
PREV = datetime.date(2023, 3, 15)  # fiscal year 2022-23
P = Decimal("0.01")


def receipt(freelancer, **kw):
    kw.setdefault("value_date", CUR)
    return ReceiptFactory(freelancer=freelancer, **kw)


def compute(scheme, by=None, as_of=datetime.date(2024, 8, 1)):
    return scheme_compute(scheme_id=scheme.pk, by=by, as_of=as_of)


def test_only_the_converted_part_of_counted_receipts_in_the_fiscal_year_counts():
    f = ApprovedFreelancerFactory()
    receipt(f, amount=Decimal("1000.00"), retained_amount=Decimal("250.00"), pkr_rate=Decimal(280))
    receipt(f, value_date=datetime.date(2024, 7, 1))  # next fiscal year
    receipt(f, value_date=datetime.date(2023, 6, 30), amount=Decimal("10.00"))  # previous year
    receipt(f, reversed_on=datetime.date(2024, 4, 1))
    receipt(f, source=Receipt.Source.STRIPE)
    non_it = PurposeCode.objects.create(code="1001", description="Goods", category="x", is_it=False)
    receipt(f, purpose_code=non_it)
    scheme = compute(IncentiveSchemeFactory())

    e = Entitlement.objects.get(scheme=scheme, freelancer=f)
    assert e.receipts_counted == 1
    assert e.proceeds_usd == Decimal("750.00")
    assert e.proceeds_pkr == Decimal("210000.00")
    assert e.previous_proceeds_usd == Decimal("10.00")
    assert e.growth_percent == Decimal("7400.00")
    assert e.raw_amount_pkr == e.capped_amount_pkr == e.awarded_amount_pkr == Decimal("10500.00")
    assert scheme.status == IncentiveScheme.Status.COMPUTED
    assert (scheme.eligible_count, scheme.excluded_count) == (1, 0)


def test_usd_counts_in_proportion_to_the_converted_part_of_a_foreign_currency_receipt():
    f = ApprovedFreelancerFactory()
    receipt(
        f,
        amount=Decimal("300.00"),
        currency="EUR",
        usd_amount=Decimal("324.00"),
        retained_amount=Decimal("100.00"),
        pkr_rate=Decimal("300.123456"),
    )
    scheme = compute(IncentiveSchemeFactory())
    e = Entitlement.objects.get(scheme=scheme)
    assert e.proceeds_usd == Decimal("216.00")
    assert e.proceeds_pkr == Decimal("60024.69")  # 200 x 300.123456 = 60024.6912


def test_each_rule_excludes_with_its_reason():
    scheme = IncentiveSchemeFactory(
        kind=IncentiveScheme.Kind.CASH_REWARD,
        min_proceeds_usd=Decimal("1000"),
        growth_required_percent=Decimal("10"),
    )
    suspended = ApprovedFreelancerFactory(status=Freelancer.Status.SUSPENDED)
    expired = ApprovedFreelancerFactory(expires_on=datetime.date(2024, 7, 31))
    all_retained = ApprovedFreelancerFactory()
    small = ApprovedFreelancerFactory()
    newcomer = ApprovedFreelancerFactory()
    flat = ApprovedFreelancerFactory()
    grower = ApprovedFreelancerFactory()
    for f in (suspended, expired, newcomer):
        receipt(f, amount=Decimal(5000))
    receipt(all_retained, amount=Decimal(5000), retained_amount=Decimal(5000))
    receipt(small, amount=Decimal("999.99"))
    for f, previous, current in ((flat, 5000, 5400), (grower, 5000, 5500), (small, 100, 999.99)):
        receipt(f, amount=Decimal(previous), value_date=PREV)
        if f is not small:
            receipt(f, amount=Decimal(current))
    receipt(ApprovedFreelancerFactory(), value_date=PREV)  # previous year only: no proceeds
    compute(scheme)

    reasons = dict(Exclusion.objects.filter(scheme=scheme).values_list("freelancer", "reason"))
    R = Exclusion.Reason
    assert reasons[suspended.pk] == R.REGISTRATION_INVALID
    assert reasons[expired.pk] == R.REGISTRATION_INVALID
    assert reasons[all_retained.pk] == R.NO_PROCEEDS
    assert reasons[small.pk] == R.BELOW_MINIMUM
    assert reasons[newcomer.pk] == R.NO_PREVIOUS_YEAR
    assert reasons[flat.pk] == R.INSUFFICIENT_GROWTH
    assert len(reasons) == 7
    assert list(Entitlement.objects.filter(scheme=scheme).values_list("freelancer", flat=True)) == [
        grower.pk
    ]
    flat_row = Exclusion.objects.get(scheme=scheme, freelancer=flat)
    assert flat_row.growth_percent == Decimal("8.00")
    assert "8.00%" in flat_row.detail and "10%" in flat_row.detail


def test_increase_basis_pays_on_the_increase_and_excludes_a_decrease():
    scheme = IncentiveSchemeFactory(basis=IncentiveScheme.Basis.INCREASE, rate_percent=Decimal(10))
    up, down = ApprovedFreelancerFactory(), ApprovedFreelancerFactory()
    receipt(up, amount=Decimal(1000), value_date=PREV, pkr_rate=Decimal(250))
    receipt(up, amount=Decimal(1100), pkr_rate=Decimal(280))
    receipt(down, amount=Decimal(1000), value_date=PREV)
    receipt(down, amount=Decimal(900))
    compute(scheme)
    e = Entitlement.objects.get(scheme=scheme)
    assert e.freelancer_id == up.pk
    assert e.basis_pkr == Decimal(308000 - 250000)
    assert e.raw_amount_pkr == Decimal("5800.00")
    assert Exclusion.objects.get(scheme=scheme).reason == Exclusion.Reason.NO_INCREASE


def test_receipts_before_approval_count_only_when_the_scheme_allows_it():
    f = ApprovedFreelancerFactory(
        approved_at=datetime.datetime(2024, 1, 10, 12, tzinfo=datetime.UTC)
    )
    receipt(f, value_date=datetime.date(2024, 1, 9), amount=Decimal(100))
    receipt(f, value_date=datetime.date(2024, 1, 10), amount=Decimal(200))
    strict = compute(IncentiveSchemeFactory(require_approved_before_receipt=True))
    lenient = compute(IncentiveSchemeFactory())
    assert Entitlement.objects.get(scheme=strict).proceeds_usd == Decimal(200)
    assert Entitlement.objects.get(scheme=lenient).proceeds_usd == Decimal(300)


def test_only_the_schemes_purpose_codes_count():
    f = ApprovedFreelancerFactory()
    receipt(f, purpose_code=purpose_code("9182"), amount=Decimal(100))
    receipt(f, purpose_code=purpose_code("9184"), amount=Decimal(200))
    scheme = IncentiveSchemeFactory()
    scheme.purpose_codes.set([purpose_code("9184")])
    compute(scheme)
    assert Entitlement.objects.get(scheme=scheme).proceeds_usd == Decimal(200)


def test_cap_and_budget_scale_awards_to_exactly_the_budget():
    scheme = IncentiveSchemeFactory(
        kind=IncentiveScheme.Kind.CASH_REWARD,
        cap_per_freelancer_pkr=Decimal("20000.00"),
        fund_budget_pkr=Decimal("30000.00"),
    )
    fs = [ApprovedFreelancerFactory() for _ in range(3)]
    for f, usd in zip(fs, (2000, 1000, 1000), strict=True):  # 5% of usd x 280: 28000, 14000 x 2
        receipt(f, amount=Decimal(usd))
    scheme = compute(scheme)
    rows = list(Entitlement.objects.filter(scheme=scheme).order_by("freelancer_id"))
    assert [r.raw_amount_pkr for r in rows] == [Decimal(28000), Decimal(14000), Decimal(14000)]
    assert [r.capped_amount_pkr for r in rows] == [Decimal(20000), Decimal(14000), Decimal(14000)]
    # 30000 / 48000 of each: 12500, 8750, 8750
    assert [r.awarded_amount_pkr for r in rows] == [Decimal(12500), Decimal(8750), Decimal(8750)]
    assert scheme.scaled and scheme.awarded_total_pkr == Decimal(30000)
    assert scheme.entitled_total_pkr == Decimal(48000)


def test_recomputing_gives_the_same_rows_and_approval_freezes_them():
    for _ in range(4):
        receipt(ApprovedFreelancerFactory(), amount=Decimal("1234.57"))
    scheme = IncentiveSchemeFactory(fund_budget_pkr=Decimal("100.00"))

    def snapshot():
        return sorted(
            Entitlement.objects.filter(scheme=scheme).values_list(
                "freelancer", "proceeds_pkr", "awarded_amount_pkr"
            )
        )

    compute(scheme)
    first = snapshot()
    compute(scheme)
    assert snapshot() == first
    assert sum(a for _, _, a in first) == Decimal("100.00")
    IncentiveScheme.objects.filter(pk=scheme.pk).update(status=IncentiveScheme.Status.APPROVED)
    with pytest.raises(IncentiveError, match="frozen"):
        compute(scheme)


def test_management_command_computes_by_name_and_rejects_an_unknown_scheme(capsys):
    receipt(ApprovedFreelancerFactory())
    scheme = IncentiveSchemeFactory(name="Rebate 2023-24")
    staff = StaffFactory()
    call_command("compute_incentives", "Rebate 2023-24", "--user", staff.username)
    scheme.refresh_from_db()
    assert scheme.status == IncentiveScheme.Status.COMPUTED
    assert scheme.computed_by == staff
    assert "1 eligible" in capsys.readouterr().out
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("compute_incentives", "no such scheme")


# --- the computation against a plain Python definition, on random data --------------------------


def _python_definition(scheme, as_of):
    """The scheme's rules written directly over every receipt, one freelancer at a time."""
    cur_start, cur_end = datetime.date(2023, 7, 1), datetime.date(2024, 6, 30)
    prev_start = datetime.date(2022, 7, 1)
    codes = {c.pk for c in scheme.purpose_codes.all()}
    figures = {}
    for r in Receipt.objects.select_related("purpose_code", "freelancer"):
        if (
            r.freelancer is None
            or r.source != "bank"
            or r.reversed_on
            or not r.purpose_code.is_it
            or (codes and r.purpose_code_id not in codes)
            or not prev_start <= r.value_date <= cur_end
        ):
            continue
        fig = figures.setdefault(r.freelancer, [0, Decimal(0), Decimal(0), Decimal(0), Decimal(0)])
        usd = r.usd_amount * (r.amount - r.retained_amount) / r.amount
        pkr = (r.amount - r.retained_amount) * r.pkr_rate
        if r.value_date >= cur_start:
            fig[0] += 1
            fig[1] += usd
            fig[2] += pkr
        else:
            fig[3] += usd
            fig[4] += pkr
    out = {}
    for f, (n, usd, pkr, pusd, ppkr) in figures.items():
        usd, pkr, pusd, ppkr = (x.quantize(P, ROUND_HALF_UP) for x in (usd, pkr, pusd, ppkr))
        if f.status != "approved" or f.expires_on < as_of:
            out[f.pk] = "registration_invalid"
        elif n == 0 or pkr == 0:
            out[f.pk] = "no_proceeds"
        elif usd < scheme.min_proceeds_usd:
            out[f.pk] = "below_minimum"
        elif scheme.growth_required_percent is not None and pusd == 0:
            out[f.pk] = "no_previous_year"
        elif (
            scheme.growth_required_percent is not None
            and (usd - pusd) / pusd * 100 < scheme.growth_required_percent
        ):
            out[f.pk] = "insufficient_growth"
        else:
            award = (pkr * scheme.rate_percent / 100).quantize(P, ROUND_HALF_UP)
            out[f.pk] = (usd, pkr, pusd, ppkr, min(award, scheme.cap_per_freelancer_pkr))
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_computation_matches_a_plain_python_definition_on_random_receipts(seed):
    rng = random.Random(seed)
    codes = list(PurposeCode.objects.filter(is_it=True))
    other = PurposeCode.objects.create(code="1002", description="Goods", category="x", is_it=False)
    freelancers = [ApprovedFreelancerFactory() for _ in range(12)]
    freelancers[0].status = Freelancer.Status.SUSPENDED
    freelancers[0].save()
    for _ in range(150):
        f = rng.choice(freelancers)
        amount = Decimal(rng.randrange(100, 500_000)) / 100
        currency = rng.choice(["USD", "EUR"])
        ReceiptFactory(
            account=DollarAccountFactory(freelancer=f) if rng.random() < 0.1 else None,
            freelancer=f,
            amount=amount,
            currency=currency,
            usd_amount=amount if currency == "USD" else (amount * Decimal("1.0837")).quantize(P),
            pkr_rate=Decimal(rng.randrange(270_000_000, 310_000_000)) / 1_000_000,
            retained_amount=(amount * rng.choice([0, 0, 10, 33, 100]) / 100).quantize(P),
            value_date=datetime.date(2022, 7, 1) + datetime.timedelta(days=rng.randrange(760)),
            purpose_code=rng.choice(codes + [other]),
            reversed_on=datetime.date(2024, 7, 1) if rng.random() < 0.05 else None,
        )
    scheme = IncentiveSchemeFactory(
        min_proceeds_usd=Decimal(2000),
        growth_required_percent=Decimal("5"),
        cap_per_freelancer_pkr=Decimal("150000"),
    )
    scheme.purpose_codes.set(codes[:4])
    as_of = datetime.date(2024, 8, 1)
    compute(scheme, as_of=as_of)

    expected = _python_definition(scheme, as_of)
    got = {x.freelancer_id: x.reason for x in Exclusion.objects.filter(scheme=scheme)} | {
        e.freelancer_id: (
            e.proceeds_usd,
            e.proceeds_pkr,
            e.previous_proceeds_usd,
            e.previous_proceeds_pkr,
            e.capped_amount_pkr,
        )
        for e in Entitlement.objects.filter(scheme=scheme)
    }
    assert got == expected
    assert any(isinstance(v, tuple) for v in got.values())


def test_stored_rows_equal_the_rules_applied_one_by_one_including_the_explanations():
    """On PostgreSQL the rules run as SQL; they must agree with ``assess`` row for row."""
    from payments.selectors_incentives import proceeds_by_freelancer
    from payments.services.incentives import assess

    scheme = IncentiveSchemeFactory(
        min_proceeds_usd=Decimal(1500),
        growth_required_percent=Decimal("12.5"),
        cap_per_freelancer_pkr=Decimal("30000"),
        basis=IncentiveScheme.Basis.INCREASE,
    )
    suspended = ApprovedFreelancerFactory(status=Freelancer.Status.SUSPENDED)
    receipt(suspended)
    for previous, current in ((0, 2000), (1000, 1100), (1000, 1200), (1000, 3000), (5000, 1000)):
        f = ApprovedFreelancerFactory()
        if previous:
            receipt(f, amount=Decimal(previous), value_date=PREV)
        receipt(f, amount=Decimal(current), retained_amount=Decimal("0.37"))
    as_of = datetime.date(2024, 8, 1)
    scheme = compute(scheme, as_of=as_of)  # the rules as stored (1500.00, not 1500)
    for row in proceeds_by_freelancer(scheme=scheme):
        v = assess(scheme=scheme, row=row, as_of=as_of)
        if v.reason:
            x = Exclusion.objects.get(scheme=scheme, freelancer_id=row.freelancer_id)
            assert (x.reason, x.detail, x.growth_percent) == (v.reason, v.detail, v.growth_percent)
        else:
            e = Entitlement.objects.get(scheme=scheme, freelancer_id=row.freelancer_id)
            assert (e.basis_pkr, e.raw_amount_pkr, e.capped_amount_pkr, e.growth_percent) == (
                v.basis_pkr,
                v.raw_amount_pkr,
                v.capped_amount_pkr,
                v.growth_percent,
            )
    assert Exclusion.objects.filter(scheme=scheme).count() == 5
    assert Entitlement.objects.filter(scheme=scheme).count() == 1


@pytest.mark.parametrize("seed", [3, 4])
def test_stored_awards_equal_allocate_fund_over_the_entitlements_in_freelancer_order(seed):
    """The fund allocation runs in SQL on PostgreSQL; ``allocate_fund`` is its oracle (ties in
    the remainders included: equal amounts give equal remainders)."""
    from payments.services.incentives import allocate_fund

    rng = random.Random(seed)
    for _ in range(25):
        amount = (
            Decimal(rng.choice([1000, 1000, 1000, rng.randrange(500, 90_000)]))
            + Decimal(rng.randrange(100)) / 100
        )
        receipt(ApprovedFreelancerFactory(), amount=amount)
    scheme = IncentiveSchemeFactory(
        kind=IncentiveScheme.Kind.CASH_REWARD,
        cap_per_freelancer_pkr=Decimal("60000"),
        fund_budget_pkr=Decimal(rng.randrange(10_000_00, 200_000_00)) / 100,
    )
    scheme = compute(scheme)
    rows = list(Entitlement.objects.filter(scheme=scheme).order_by("freelancer_id"))
    expected = allocate_fund(
        entitlements=[int(r.capped_amount_pkr * 100) for r in rows],
        budget=int(scheme.fund_budget_pkr * 100),
    )
    assert scheme.scaled
    assert [int(r.awarded_amount_pkr * 100) for r in rows] == expected
    assert scheme.awarded_total_pkr == scheme.fund_budget_pkr
    assert scheme.entitled_total_pkr == sum(r.capped_amount_pkr for r in rows)


@pytest.mark.postgres
def test_computing_twice_in_one_transaction_leaves_no_temporary_table_behind():
    """On PostgreSQL the figures pass through a temporary table between two statements."""
    from django.db import connection

    from payments.services.incentives import ASSESSED_TABLE

    for amount in ("1500.00", "250.37"):
        receipt(ApprovedFreelancerFactory(), amount=Decimal(amount))
    scheme = IncentiveSchemeFactory()
    compute(scheme)
    first = sorted(Entitlement.objects.filter(scheme=scheme).values_list("freelancer", "basis_pkr"))
    compute(scheme)
    assert (
        sorted(Entitlement.objects.filter(scheme=scheme).values_list("freelancer", "basis_pkr"))
        == first
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [f"pg_temp.{ASSESSED_TABLE}"])
        assert cursor.fetchone() == (None,)
