"""Load the demo population: idempotent, deterministic. Each app contributes its demo module;
registry sits on top of the others, so the command lives here."""

import random

from django.core.management.base import BaseCommand
from django.db import transaction

from freelancers import demo as freelancers_demo
from payments import demo as payments_demo
from payments import demo_incentives, demo_stripe
from registry import demo as registry_demo


class Command(BaseCommand):
    help = "Create demo staff, freelancers, banks, accounts and receipts (safe to run twice)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=2024)

    def handle(self, *args, seed: int, **options):
        rng = random.Random(seed)
        with transaction.atomic():
            staff = freelancers_demo.load_staff()
            freelancers = freelancers_demo.load_freelancers(rng)
            banks = payments_demo.load_banks()
            receipts = payments_demo.load_accounts_and_receipts(rng, freelancers)
            payments_demo.load_reversals()
            invoices = demo_stripe.load_invoices(freelancers)
            incentives = demo_incentives.load_incentives(freelancers)
        statistics_periods = registry_demo.load_statistics()
        self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        self.stdout.write(f"  freelancers: {len(freelancers)}, new receipts: {receipts}")
        self.stdout.write("")
        self.stdout.write(
            "Sign in at http://127.0.0.1:8000/admin/ with password "
            f"'{freelancers_demo.DEMO_PASSWORD}' as:"
        )
        for username, description in staff:
            self.stdout.write(f"  {username:<10} {description}")
        self.stdout.write(
            f"Freelancers: freelancer1 ... freelancer{len(freelancers)}, same password."
        )
        self.stdout.write(
            f"Statistics ({statistics_periods} periods): http://127.0.0.1:8000/statistics/ and "
            "/api/v1/statistics/monthly/?format=csv"
        )
        for line in freelancers_demo.staff_sign_in_lines():
            self.stdout.write(line)
        self.stdout.write("Bank webhook secrets: " + ", ".join(f"{c}={s}" for c, s in banks))
        self.stdout.write(demo_stripe.describe(invoices))
        self.stdout.write(
            "Try the bank webhook: python manage.py sign_bank_event HBL --secret "
            f"{banks[0][1]} | sh   (earnings: /earnings/ as a freelancer; docs/bank-webhooks.md)"
        )
        self.stdout.write("Incentive schemes (docs/incentives.md):\n" + "\n".join(incentives))
