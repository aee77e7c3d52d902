"""Helpers for the statistics tests: plain-Python definitions to compare the SQL against."""

import datetime
from collections import defaultdict
from decimal import Decimal

from payments.models import Receipt
from registry.services import statistics_rebuild


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
