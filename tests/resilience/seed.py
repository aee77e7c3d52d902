"""Bulk data for the fault tests: approved freelancers (ORM bulk_create in ``manage.py shell``)
and receipts (one INSERT ... SELECT generate_series), so that an aggregation or an incentive
computation runs long enough to be killed in the middle."""

from __future__ import annotations

import datetime
from collections import defaultdict
from decimal import Decimal

from tests.resilience.harness import PortalStack

SEED_BANK = "SEEDBK"


def seed_freelancers(stack: PortalStack, count: int, *, prefix: str = "seed") -> None:
    stack.shell(
        "import datetime\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.utils import timezone\n"
        "from freelancers.models import Freelancer\n"
        "User = get_user_model()\n"
        "now = timezone.now()\n"
        f"users = User.objects.bulk_create([User(username=f'{prefix}-{{i}}',"
        f" email=f'{prefix}-{{i}}@example.pk') for i in range({count})])\n"
        "Freelancer.objects.bulk_create([Freelancer(user=u, full_name=f'Seed {i}',"
        f" cnic=str(3110000000001 + i * 10 + {abs(hash(prefix)) % 7} * 10**9),"
        " status=Freelancer.Status.APPROVED,"
        " province=['punjab', 'sindh', 'islamabad'][i % 3],"
        f" registration_number=f'{prefix.upper()}-{{i}}',"
        " submitted_at=now - datetime.timedelta(days=4000),"
        " approved_at=now - datetime.timedelta(days=3990),"
        " expires_on=(now + datetime.timedelta(days=300)).date())"
        " for i, u in enumerate(users)])\n"
    )


def seed_receipts(
    stack: PortalStack, count: int, *, days: int = 3650, prefix: str = "SEED"
) -> None:
    """``count`` bank receipts spread over the last ``days`` days, a third of them unmatched, the
    rest spread over the seeded freelancers; amounts 1.25 .. 5000.25 USD; every 10th reversed."""
    if not stack.db.scalar("SELECT COUNT(*) FROM payments_bank WHERE code = %s", (SEED_BANK,)):
        stack.manage("add_bank", SEED_BANK, "--name", "Seed bank", "--secret", "seed-secret-0001")
    stack.db.query(
        """
        WITH f AS (SELECT array_agg(id ORDER BY id) AS ids FROM freelancers_freelancer
                   WHERE registration_number LIKE 'SEED-%%')
        INSERT INTO payments_receipt (source, bank_id, reference, iban, account_id, freelancer_id,
            amount, currency, usd_amount, pkr_rate, value_date, purpose_code_id, retained_amount,
            tax_withheld_pkr, remitter_name, remitter_country, reversed_on, reversal_reason,
            created_at)
        SELECT 'bank', (SELECT id FROM payments_bank WHERE code = %(bank)s),
            %(prefix)s || g, 'PK00SEED' || lpad(g::text, 16, '0'), NULL,
            CASE WHEN g %% 3 = 0 OR cardinality(f.ids) = 0 THEN NULL
                 ELSE f.ids[1 + g %% cardinality(f.ids)] END,
            (g %% 5000) + 1.25, 'USD', (g %% 5000) + 1.25, 278.5,
            current_date - (g %% %(days)s),
            (SELECT id FROM payments_purposecode WHERE code = '918' || (1 + g %% 5)),
            CASE WHEN g %% 4 = 0 THEN 1.00 ELSE 0 END, 0, 'Seed Remitter',
            (ARRAY['US','GB','DE','AE'])[1 + g %% 4],
            CASE WHEN g %% 10 = 0 THEN current_date - (g %% %(days)s) ELSE NULL END, '', now()
        FROM generate_series(1, %(count)s) AS g, f
        """,
        {"bank": SEED_BANK, "prefix": prefix, "count": count, "days": days},
    )


def truth_monthly(stack: PortalStack) -> dict[str, dict]:
    """The monthly figures straight from the receipts, by the contract's definition (IT codes,
    not reversed, bank receipts), computed here in plain SQL."""
    rows = stack.db.query(
        """
        SELECT to_char(r.value_date, 'YYYY-MM'), SUM(r.usd_amount), COUNT(*),
               COUNT(DISTINCT r.freelancer_id)
        FROM payments_receipt r JOIN payments_purposecode pc ON pc.id = r.purpose_code_id
        WHERE r.source = 'bank' AND r.reversed_on IS NULL AND pc.is_it
        GROUP BY 1
        """
    )
    return {
        month: {"total_usd": f"{Decimal(total):.2f}", "receipts": n, "freelancers": people}
        for month, total, n, people in rows
    }


def months_of_receipts(stack: PortalStack) -> list[datetime.date]:
    rows = stack.db.query(
        "SELECT DISTINCT date_trunc('month', value_date)::date FROM payments_receipt ORDER BY 1"
    )
    return [row[0] for row in rows]


def monthly_from_api(stack: PortalStack, start: str, end: str) -> dict[str, dict]:
    response = stack.get(f"/api/v1/statistics/monthly/?from={start}&to={end}")
    assert response.status == 200, response.body[:300]
    out = defaultdict(dict)
    for row in response.json()["results"]:
        if row["receipts"]:
            out[row["month"]] = {k: row[k] for k in ("total_usd", "receipts", "freelancers")}
    return dict(out)
