"""Read what the portal holds (SQL on the live database, the public statistics API) in the same
shape as the generator's ground truth, and list every difference."""

from __future__ import annotations

import datetime
import json
from collections import defaultdict
from decimal import Decimal

from tests.resilience.bankgen import CENT, Traffic, money, today_karachi
from tests.resilience.harness import LiveDatabase, PortalStack

RECEIPTS_SQL = """
SELECT b.code, r.reference, r.iban, r.amount, r.currency, r.usd_amount, r.pkr_rate, r.value_date,
       pc.code, r.retained_amount, r.tax_withheld_pkr, r.remitter_name, r.remitter_country,
       r.reversed_on, a.iban, f.cnic
FROM payments_receipt r
JOIN payments_bank b ON b.id = r.bank_id
JOIN payments_purposecode pc ON pc.id = r.purpose_code_id
LEFT JOIN payments_dollaraccount a ON a.id = r.account_id
LEFT JOIN freelancers_freelancer f ON f.id = r.freelancer_id
WHERE r.source = 'bank' AND b.code = ANY(%s)
"""

ACCOUNTS_SQL = """
SELECT a.iban, b.code, a.holder_cnic, a.currency, a.opened_on, a.closed_on, f.cnic
FROM payments_dollaraccount a
JOIN payments_bank b ON b.id = a.bank_id
LEFT JOIN freelancers_freelancer f ON f.id = a.freelancer_id
WHERE b.code = ANY(%s) OR a.iban = ANY(%s)
"""

SUMS_SQL = """
SELECT r.iban, COUNT(*), SUM(r.amount), SUM(r.usd_amount)
FROM payments_receipt r JOIN payments_bank b ON b.id = r.bank_id
WHERE r.source = 'bank' AND r.reversed_on IS NULL AND b.code = ANY(%s)
GROUP BY r.iban
"""

FIELDS = [
    "iban",
    "amount",
    "currency",
    "usd_amount",
    "pkr_rate",
    "value_date",
    "purpose_code",
    "retained_amount",
    "tax_withheld_pkr",
    "remitter_name",
    "remitter_country",
    "reversed_on",
    "account_iban",
    "freelancer_cnic",
]


def held_receipts(db: LiveDatabase, traffic: Traffic) -> tuple[dict, int]:
    rows = db.query(RECEIPTS_SQL, (sorted(traffic.banks),))
    held = {}
    for row in rows:
        key = (row[0], row[1])
        held[key] = dict(zip(FIELDS, row[2:], strict=True))
    return held, len(rows)


def receipt_differences(traffic: Traffic, held: dict, row_count: int) -> list[str]:
    expected = traffic.expected_receipts()
    problems = []
    if row_count != len(held):
        problems.append(f"{row_count - len(held)} duplicate receipt rows")
    missing = sorted(set(expected) - set(held))
    extra = sorted(set(held) - set(expected))
    if missing:
        problems.append(f"{len(missing)} receipts lost, e.g. {missing[:5]}")
    phantoms = sorted(set(held) & traffic.phantom_references)
    if phantoms:
        problems.append(
            f"{len(phantoms)} receipts stored from badly signed deliveries: {phantoms[:5]}"
        )
    if extra:
        problems.append(f"{len(extra)} receipts nobody validly sent, e.g. {extra[:5]}")
    for key in sorted(set(expected) & set(held)):
        want, have = expected[key], held[key]
        for name in FIELDS:
            a, b = want[name], have[name]
            if isinstance(a, Decimal) or isinstance(b, Decimal):
                same = a is not None and b is not None and Decimal(a) == Decimal(b)
            else:
                same = a == b
            if not same:
                problems.append(f"{key} {name}: expected {a!r}, portal holds {b!r}")
    return problems


def account_differences(db: LiveDatabase, traffic: Traffic) -> list[str]:
    rows = db.query(ACCOUNTS_SQL, (sorted(traffic.banks), sorted(traffic.phantom_ibans)))
    held = {row[0]: row for row in rows}
    problems = []
    for iban in sorted(set(traffic.accounts) - set(held)):
        problems.append(f"account {iban} lost")
    for iban in sorted(set(held) - set(traffic.accounts)):
        problems.append(f"account {iban} nobody validly opened")
    for iban, acct in traffic.accounts.items():
        if iban not in held:
            continue
        _, bank, cnic, currency, opened_on, closed_on, freelancer_cnic = held[iban]
        want_freelancer = acct.cnic if acct.cnic in traffic.registered else None
        for name, want, have in (
            ("bank", acct.bank, bank),
            ("holder_cnic", acct.cnic, cnic),
            ("currency", acct.currency, currency),
            ("opened_on", acct.opened_on, opened_on),
            ("closed_on", acct.closed_on, closed_on),
            ("freelancer", want_freelancer, freelancer_cnic),
        ):
            if want != have:
                problems.append(f"account {iban} {name}: expected {want!r}, portal holds {have!r}")
    return problems


def sum_differences(db: LiveDatabase, traffic: Traffic) -> list[str]:
    """Per account (IBAN): count and sums of amount and USD of the receipts that count."""
    want: dict[str, list] = defaultdict(lambda: [0, Decimal("0.00"), Decimal("0.00")])
    for receipt in traffic.expected_receipts().values():
        if receipt["reversed_on"] is None:
            row = want[receipt["iban"]]
            row[0] += 1
            row[1] += receipt["amount"]
            row[2] += receipt["usd_amount"]
    have = {
        iban: [count, Decimal(amount).quantize(CENT), Decimal(usd).quantize(CENT)]
        for iban, count, amount, usd in db.query(SUMS_SQL, (sorted(traffic.banks),))
    }
    problems = []
    for iban in sorted(set(want) | set(have)):
        if want.get(iban) != have.get(iban):
            problems.append(f"{iban}: expected {want.get(iban)}, portal holds {have.get(iban)}")
    return problems


def month_range(traffic: Traffic) -> tuple[str, str]:
    dates = [v["A"].value_date for v in traffic.remittances.values()]
    return min(dates).strftime("%Y-%m"), today_karachi().strftime("%Y-%m")


def statistics_monthly(stack: PortalStack, start: str, end: str) -> list[dict]:
    response = stack.get(f"/api/v1/statistics/monthly/?from={start}&to={end}")
    assert response.status == 200, response.body[:500]
    return response.json()["results"]


def statistics_fiscal_years(stack: PortalStack, start: str, end: str) -> list[dict]:
    response = stack.get(f"/api/v1/statistics/fiscal-years/?from={start}&to={end}")
    assert response.status == 200, response.body[:500]
    return response.json()["results"]


def fiscal_year(month: str) -> str:
    year, mon = (int(part) for part in month.split("-"))
    first = year if mon >= 7 else year - 1
    return f"{first}-{(first + 1) % 100:02d}"


def statistics_differences(traffic: Traffic, rows: list[dict]) -> list[str]:
    """The monthly API's totals, counts and freelancer counts against the ground truth."""
    expected = traffic.expected_monthly()
    problems = []
    seen = set()
    for row in rows:
        month = row["month"]
        seen.add(month)
        want = expected.get(month, {"total_usd": "0.00", "receipts": 0, "freelancers": 0})
        have = {k: row[k] for k in ("total_usd", "receipts", "freelancers")}
        if have != want:
            problems.append(f"{month}: expected {want}, API says {have}")
        if row["fiscal_year"] != fiscal_year(month):
            problems.append(f"{month}: fiscal_year {row['fiscal_year']}")
    for month in sorted(set(expected) - seen):
        problems.append(f"{month}: missing from the API")
    return problems


def dump(path, payload) -> None:
    def default(value):
        if isinstance(value, Decimal | datetime.date):
            return str(value)
        if isinstance(value, set | frozenset):
            return sorted(value)
        raise TypeError(type(value))

    path.write_text(json.dumps(payload, indent=2, default=default))


__all__ = ["money"]
