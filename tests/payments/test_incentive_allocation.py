"""Fund allocation: pro rata, rounded down to the paisa, largest remainder for the rest."""

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payments.services.incentives import allocate_fund

paisas = st.lists(st.integers(min_value=0, max_value=10**13), max_size=200)


@given(entitlements=paisas, budget=st.integers(min_value=0, max_value=10**14))
def test_awards_sum_to_the_budget_or_the_entitlements_and_never_exceed_an_entitlement(
    entitlements, budget
):
    awards = allocate_fund(entitlements=entitlements, budget=budget)
    assert len(awards) == len(entitlements)
    assert sum(awards) == min(budget, sum(entitlements))
    assert all(0 <= a <= e for a, e in zip(awards, entitlements, strict=True))


@given(entitlements=paisas, budget=st.integers(min_value=0, max_value=10**14))
def test_each_scaled_award_is_its_pro_rata_share_rounded_down_or_up_by_one_paisa(
    entitlements, budget
):
    total = sum(entitlements)
    awards = allocate_fund(entitlements=entitlements, budget=budget)
    if total <= budget:
        assert awards == entitlements
        return
    for a, e in zip(awards, entitlements, strict=True):
        share = Fraction(e * budget, total)
        assert share - 1 < a <= share + 1
        assert a in (e * budget // total, e * budget // total + 1)


@given(
    entitlements=st.lists(st.integers(min_value=1, max_value=10**9), min_size=2, max_size=60),
    data=st.data(),
)
def test_extra_paisas_go_to_the_largest_remainders_first(entitlements, data):
    total = sum(entitlements)
    budget = data.draw(st.integers(min_value=0, max_value=total - 1))
    awards = allocate_fund(entitlements=entitlements, budget=budget)
    remainders = [e * budget % total for e in entitlements]
    bumped = [i for i, e in enumerate(entitlements) if awards[i] > e * budget // total]
    others = [i for i in range(len(entitlements)) if i not in bumped]
    # Everyone bumped has a remainder at least as large as anyone not bumped; on a tie the
    # earlier position (lower freelancer id) wins.
    for i in bumped:
        for j in others:
            assert remainders[i] > remainders[j] or (remainders[i] == remainders[j] and i < j)


def test_ties_go_to_the_lower_position():
    assert allocate_fund(entitlements=[100, 100, 100], budget=200) == [67, 67, 66]
    assert allocate_fund(entitlements=[1, 1, 1], budget=1) == [1, 0, 0]


def test_negative_input_is_refused():
    with pytest.raises(ValueError):
        allocate_fund(entitlements=[-1], budget=5)
