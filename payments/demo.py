"""Demo population for payments: banks with webhook secrets, dollar accounts and receipts."""

import datetime
import random
from decimal import Decimal

from stdnum import iban as iban_module

from freelancers.models import Freelancer
from payments.models import Bank, PurposeCode, Receipt
from payments.services.banks import account_open, bank_add
from payments.services.receipts import receipt_record, receipt_reverse

BANKS = [
    ("HBL", "Habib Bank Limited", "HABB"),
    ("MCB", "MCB Bank Limited", "MUCB"),
    ("UBL", "United Bank Limited", "UNIL"),
]
DEMO_SECRET_PREFIX = "demo-webhook-secret-"
COUNTRIES = ["US", "GB", "DE", "AE", "CA", "AU", "NL", "SA", "SG", "IE"]
CURRENCY_RATES = {"USD": Decimal("1"), "EUR": Decimal("1.08"), "GBP": Decimal("1.27")}
PKR_PER_USD = Decimal("278.50")
MONTHS_OF_RECEIPTS = 26


def make_iban(bank_letters: str, account: int) -> str:
    """A Pakistani IBAN with correct check digits: PKkk BBBB 16 digits."""
    bban = f"{bank_letters}{account:016d}"
    check = iban_module.calc_check_digits(f"PK00{bban}")
    return f"PK{check}{bban}"


def load_banks() -> list[tuple[str, str]]:
    """The demo banks, each with one webhook secret (through the same service as add_bank)."""
    out = []
    for code, name, _ in BANKS:
        secret = f"{DEMO_SECRET_PREFIX}{code.lower()}"
        bank_add(code=code, name=name, secret=secret)
        out.append((code, secret))
    return out


def load_accounts_and_receipts(rng: random.Random, freelancers: list[Freelancer]) -> int:
    """A dollar account for each approved freelancer, and monthly receipts for the past two
    years, plus a few unmatched receipts. Deterministic for a given rng seed; idempotent by
    (bank, reference)."""
    banks = {code: Bank.objects.get(code=code) for code, _, _ in BANKS}
    codes = list(PurposeCode.objects.filter(is_it=True))
    today = datetime.date.today()
    created = 0
    for index, freelancer in enumerate(freelancers):
        if freelancer.status != Freelancer.Status.APPROVED:
            continue
        code, _, letters = BANKS[index % len(BANKS)]
        # As the bank's account.opened event would: linked to the approved freelancer by CNIC.
        account, _ = account_open(
            bank=banks[code],
            iban=make_iban(letters, 10_000 + index),
            currency="USD",
            cnic=freelancer.cnic,
            opened_on=(freelancer.approved_at or freelancer.created_at).date(),
        )
        base = Decimal(rng.randrange(400, 4000))
        for months_back in range(MONTHS_OF_RECEIPTS):
            if rng.random() < 0.25:
                continue
            value_date = _months_ago(today, months_back).replace(day=rng.randrange(1, 28))
            if value_date > today:
                continue
            created += _receipt(
                rng, banks[code], account, freelancer, codes, value_date, base, index, months_back
            )
    # Receipts to accounts the portal does not know: kept unmatched, still counted nationally.
    for n in range(12):
        bank = banks[BANKS[n % 3][0]]
        value_date = _months_ago(today, n * 2).replace(day=10)
        created += _receipt(rng, bank, None, None, codes, value_date, Decimal(900), 900 + n, n)
    return created


def _months_ago(today: datetime.date, months: int) -> datetime.date:
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    return datetime.date(year, month + 1, 1)


def _receipt(rng, bank, account, freelancer, codes, value_date, base, index, months_back) -> int:
    currency = rng.choice(["USD", "USD", "USD", "EUR", "GBP"])
    amount = (base * Decimal(rng.randrange(70, 140)) / 100).quantize(Decimal("0.01"))
    usd = (amount * CURRENCY_RATES[currency]).quantize(Decimal("0.01"))
    rate = (PKR_PER_USD * CURRENCY_RATES[currency]).quantize(Decimal("0.0001"))
    retained = (amount * Decimal(rng.choice([0, 0, 10, 25, 50])) / 100).quantize(Decimal("0.01"))
    iban = account.iban if account else make_iban("ALFH", 90_000 + index)
    purpose_code = rng.choice(codes)
    country = rng.choice(COUNTRIES)
    # The same ingestion path as a bank's remittance.credited event: linked to the account by IBAN.
    _, created = receipt_record(
        source=Receipt.Source.BANK,
        bank=bank,
        reference=f"DEMO-{index:04d}-{months_back:02d}",
        iban=iban,
        amount=amount,
        currency=currency,
        usd_amount=usd,
        pkr_rate=rate,
        value_date=value_date,
        purpose_code=purpose_code,
        retained_amount=retained,
        tax_withheld_pkr=((amount - retained) * rate / 100).quantize(Decimal("0.01")),
        remitter_name=f"Client {index % 17} Ltd",
        remitter_country=country,
    )
    return int(created)


def load_reversals() -> int:
    """Two demo remittances reversed by their bank (idempotent), so the admin shows some."""
    reversed_count = 0
    for reference in ("DEMO-0003-01", "DEMO-0007-02"):
        receipt = Receipt.objects.filter(reference=reference).select_related("bank").first()
        if receipt is not None and receipt.bank is not None:
            _, created = receipt_reverse(
                source=Receipt.Source.BANK,
                bank=receipt.bank,
                reference=reference,
                reversed_on=receipt.value_date + datetime.timedelta(days=3),
                reason="Recalled by the remitter's bank (demo)",
            )
            reversed_count += int(created)
    return reversed_count
