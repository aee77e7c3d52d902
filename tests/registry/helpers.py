"""Helpers for the statistics tests: plain-Python definitions to compare the SQL against."""

import datetime
import random
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from payments.models import PurposeCode, Receipt
from registry.services import statistics_rebuild
from tests.factories import ApprovedFreelancerFactory, ReceiptFactory


def python_monthly(*, dimension: str = "total") -> dict:
    """(YYYYMM, label) -> (cents, receipts, freelancers) by the contract's plain definition."""
    totals: dict = defaultdict(lambda: [Decimal(0), 0, set()])
    for r in Receipt.objects.select_related("purpose_code", "freelancer"):
        if r.source != "bank" or r.reversed_on is not None or not r.purpose_code.is_it:
            continue
        label = {
            "total": "",
            "category": r.purpose_code.category,
            "country": r.remitter_country,
            "province": (r.freelancer.province if r.freelancer else "") or "unknown",
        }[dimension]
        cell = totals[(r.value_date.year * 100 + r.value_date.month, label)]
        cell[0] += r.usd_amount
        cell[1] += 1
        if r.freelancer_id:
            cell[2].add(r.freelancer_id)
    return {k: (int(v[0] * 100), v[1], len(v[2])) for k, v in totals.items()}


def rebuild() -> None:
    statistics_rebuild()


def d(text: str) -> datetime.date:
    return datetime.date.fromisoformat(text)


def random_receipts(
    rng: random.Random,
    count: int,
    *,
    first_day: datetime.date = datetime.date(2023, 1, 1),
    countries: Sequence[str] = ("US", "GB", "AE"),
    provinces: Sequence[str] = ("punjab", "sindh", ""),
) -> list:
    """``count`` receipts over 800 days from ``first_day`` (fiscal-year and calendar-year
    boundaries) for new freelancers of ``provinces`` or none, with random countries and purpose
    codes, some reversed, some from Stripe; returns the freelancers."""
    freelancers = [ApprovedFreelancerFactory(province=p) for p in provinces]
    codes = list(PurposeCode.objects.all())
    for _ in range(count):
        ReceiptFactory(
            value_date=first_day + datetime.timedelta(days=rng.randrange(800)),
            amount=Decimal(rng.randrange(1, 10_000_000)) / 100,
            freelancer=rng.choice([*freelancers, None]),
            remitter_country=rng.choice(countries),
            purpose_code=rng.choice(codes),
            reversed_on=rng.choice([None, None, None, datetime.date(2025, 1, 1)]),
            source=rng.choice(["bank", "bank", "bank", "stripe"]),
        )
    return freelancers
