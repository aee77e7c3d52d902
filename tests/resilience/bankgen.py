"""A generator of bank webhook traffic, with its own ground truth.

It writes events exactly as ``shared/contract/bank-webhooks.md`` describes them, for several banks,
and then the deliveries a real bank would make of them: originals, redeliveries (byte-identical,
reformatted, or under a new id), conflicting redeliveries, bad signatures, stale timestamps, and
"phantom" events that are only ever sent with a bad signature (they must never be stored). The
deliveries are shuffled, so reversals and account openings often arrive before what they refer to.

The ground truth is computed here, from the events, never from the portal. Conflicting pairs are
the one place where the order of arrival decides the truth (the first variant recorded wins and
the other gets 409); ``Truth.resolve`` takes the winner from the responses and checks that exactly
one variant won.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import random
import time
import zoneinfo
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from stdnum import iban as iban_module
from stdnum.pk import cnic as cnic_module

KARACHI = zoneinfo.ZoneInfo("Asia/Karachi")
CENT = Decimal("0.01")
IT_PURPOSE_CODES = ["9102", "9181", "9182", "9183", "9184", "9185"]
USD_RATES = {"USD": Decimal("1"), "EUR": Decimal("1.0842"), "GBP": Decimal("1.2719")}
PKR_PER_USD = Decimal("278.4150")
COUNTRIES = ["US", "GB", "DE", "AE", "CA", "AU", "NL", "SA", "SG", "IE", "SE", "JP"]
REMITTER_NAMES = [
    "Acme Corp",
    "Zoë Müller GmbH",
    "株式会社テスト",
    "Ørsted Digital ApS",
    "O'Brien & Sons",
    "شركة البرمجيات",
    "Ñandú Software SL",
    'Quote "Inc"',
]


def today_karachi() -> datetime.date:
    return datetime.datetime.now(KARACHI).date()


def make_iban(letters: str, number: int) -> str:
    bban = f"{letters}{number:016d}"
    return f"PK{iban_module.calc_check_digits(f'PK00{bban}')}{bban}"


def make_cnic(rng: random.Random) -> str:
    while True:
        value = f"{rng.randint(1, 7)}{rng.randint(0, 9999):04d}{rng.randint(0, 9999999):07d}"
        value += str(rng.randint(1, 9))
        if cnic_module.is_valid(value):
            return value


def dashed(cnic: str) -> str:
    return f"{cnic[:5]}-{cnic[5:12]}-{cnic[12]}"


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def short_money(value: Decimal) -> str:
    """The same number with trailing zeros dropped ("12.50" -> "12.5"): identical per contract."""
    text = money(value)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


# --- what the portal should hold afterwards ----------------------------------------------------


@dataclass
class AccountTruth:
    bank: str
    iban: str
    cnic: str
    currency: str
    opened_on: datetime.date
    closed_on: datetime.date | None = None


@dataclass
class RemittanceTruth:
    bank: str
    reference: str
    iban: str
    amount: Decimal
    currency: str
    usd_amount: Decimal
    pkr_rate: Decimal
    value_date: datetime.date
    purpose_code: str
    retained_amount: Decimal
    tax_withheld_pkr: Decimal
    remitter_name: str
    remitter_country: str


@dataclass
class Delivery:
    seq: int
    bank: str
    body: bytes
    event_id: str
    event_type: str
    kind: str  # original | redelivery | reformatted | new_id | conflict | bad_signature | stale ...
    group: str  # the logical event: rem:<bank>:<ref>, acct:<iban>, rev:<bank>:<ref>, close:<iban>
    variant: str = "A"  # conflicting pairs: "A" (the first generated) or "B"
    signing: str = "valid"  # how the signature header is made, see ``signature_header``
    expect: frozenset[int] = frozenset({200, 201})
    # Filled in by the sender.
    status: int | None = None
    response: bytes = b""
    attempts: int = 0
    server_errors: int = 0
    connection_errors: int = 0

    def signature_header(self, secrets: list[str], wrong_secret: str, now: int) -> str | None:
        body = self.body
        if self.signing == "valid":
            return f"t={now},v1={sign(secrets[0], now, body)}"
        if self.signing == "valid_rotated":
            return f"t={now},v1={sign(secrets[-1], now, body)}"
        if self.signing == "valid_upper":
            return f"t={now},v1={sign(secrets[0], now, body).upper()}"
        if self.signing == "valid_multi":
            return f"t={now},v1={sign(wrong_secret, now, body)},v1={sign(secrets[-1], now, body)}"
        if self.signing == "wrong_secret":
            return f"t={now},v1={sign(wrong_secret, now, body)}"
        if self.signing == "tampered":  # signed over a body differing by one byte
            other = body[:-2] + (b" " if body[-2:-1] != b" " else b"\n") + body[-1:]
            return f"t={now},v1={sign(secrets[0], now, other)}"
        if self.signing == "malformed":
            return f"v1={sign(secrets[0], now, body)};t={now}"
        if self.signing == "missing":
            return None
        if self.signing == "stale_past":
            t = now - 301 - (self.seq % 5000)
            return f"t={t},v1={sign(secrets[0], t, body)}"
        if self.signing == "stale_future":
            t = now + 301 + (self.seq % 3000)
            return f"t={t},v1={sign(secrets[0], t, body)}"
        raise ValueError(self.signing)


@dataclass
class Traffic:
    banks: dict[str, list[str]]  # code -> secrets (two each: rotation)
    wrong_secret: str
    registered: dict[str, str]  # cnic -> username of a pre-registered, approved freelancer
    accounts: dict[str, AccountTruth]
    remittances: dict[tuple[str, str], dict[str, RemittanceTruth]]  # variants "A" (and "B")
    reversals: dict[tuple[str, str], datetime.date]
    phantom_references: set[tuple[str, str]]
    phantom_ibans: set[str]
    deliveries: list[Delivery]
    unique_events: int
    counts: Counter = field(default_factory=Counter)

    # --- after the run --------------------------------------------------------------------------
    def resolve(self) -> dict[tuple[str, str], RemittanceTruth]:
        """The remittance each (bank, reference) must hold: for a conflicting pair, the variant
        that was recorded (got a 2xx) while every delivery of the other variant got 409."""
        by_group: dict[str, list[Delivery]] = defaultdict(list)
        for delivery in self.deliveries:
            if delivery.kind in ("bad_signature", "stale", "phantom", "unknown_bank"):
                continue
            by_group[delivery.group].append(delivery)
        resolved = {}
        for key, variants in self.remittances.items():
            if "B" not in variants:
                resolved[key] = variants["A"]
                continue
            group = by_group[f"rem:{key[0]}:{key[1]}"]
            winners = {d.variant for d in group if d.status in (200, 201)}
            if len(winners) != 1:
                raise AssertionError(
                    f"conflicting pair {key}: variants answered 2xx: {sorted(winners)} "
                    f"({[(d.variant, d.kind, d.status) for d in group]})"
                )
            (winner,) = winners
            losers = [d for d in group if d.variant != winner and d.status != 409]
            if losers:
                raise AssertionError(
                    f"conflicting pair {key}: the losing variant was not refused with 409: "
                    f"{[(d.variant, d.kind, d.status) for d in losers]}"
                )
            resolved[key] = variants[winner]
        return resolved

    def expected_receipts(self) -> dict[tuple[str, str], dict]:
        """(bank, reference) -> the receipt's fields as the portal must hold them."""
        out = {}
        for key, rem in self.resolve().items():
            account = self.accounts.get(rem.iban)
            freelancer_cnic = (
                account.cnic if account is not None and account.cnic in self.registered else None
            )
            out[key] = {
                "iban": rem.iban,
                "amount": rem.amount,
                "currency": rem.currency,
                "usd_amount": rem.usd_amount,
                "pkr_rate": rem.pkr_rate,
                "value_date": rem.value_date,
                "purpose_code": rem.purpose_code,
                "retained_amount": rem.retained_amount,
                "tax_withheld_pkr": rem.tax_withheld_pkr,
                "remitter_name": rem.remitter_name,
                "remitter_country": rem.remitter_country,
                "reversed_on": self.reversals.get(key),
                "account_iban": rem.iban if account is not None else None,
                "freelancer_cnic": freelancer_cnic,
            }
        return out

    def expected_monthly(self) -> dict[str, dict]:
        """month "YYYY-MM" -> total_usd, receipts, freelancers (IT codes, not reversed)."""
        months: dict[str, dict] = defaultdict(
            lambda: {"total_usd": Decimal("0.00"), "receipts": 0, "freelancers": set()}
        )
        for receipt in self.expected_receipts().values():
            if receipt["reversed_on"] is not None:
                continue
            if receipt["purpose_code"] not in IT_PURPOSE_CODES:
                continue
            row = months[receipt["value_date"].strftime("%Y-%m")]
            row["total_usd"] += receipt["usd_amount"]
            row["receipts"] += 1
            if receipt["freelancer_cnic"]:
                row["freelancers"].add(receipt["freelancer_cnic"])
        return {
            month: {
                "total_usd": money(row["total_usd"]),
                "receipts": row["receipts"],
                "freelancers": len(row["freelancers"]),
            }
            for month, row in months.items()
        }

    def check_statuses(self) -> list[str]:
        """Every delivery's final answer against what the contract allows for it."""
        problems = []
        for d in self.deliveries:
            if d.status not in d.expect:
                problems.append(
                    f"#{d.seq} {d.kind} {d.event_type} {d.group} variant {d.variant} "
                    f"signing {d.signing}: {d.status} not in {sorted(d.expect)}: "
                    f"{d.response[:300]!r}"
                )
        return problems


# --- generation --------------------------------------------------------------------------------


def _dumps(payload: dict, *, style: int = 0) -> bytes:
    if style == 0:
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    if style == 1:
        return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=True).encode()

    # Reversed key order everywhere, odd spacing.
    def rev(obj):
        if isinstance(obj, dict):
            return {k: rev(obj[k]) for k in reversed(list(obj))}
        return obj

    return json.dumps(rev(payload), separators=(" , ", " : "), ensure_ascii=False).encode()


def _created(rng: random.Random) -> str:
    moment = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=rng.randint(0, 900))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(events: int = 5000, *, seed: int = 20260401, tag: str = "R") -> Traffic:
    """``events`` unique valid events plus redeliveries and faults (about 1.45 x events
    deliveries in all). ``tag`` (1-3 letters) keeps bank codes, IBANs and references distinct
    between runs that share a database."""
    rng = random.Random(seed)
    today = today_karachi()
    n_banks = 4
    bank_codes = [f"RS{tag}{i}" for i in range(1, n_banks + 1)]
    banks = {
        code: [
            f"whsec-{code.lower()}-{rng.getrandbits(64):016x}-a",
            f"whsec-{code.lower()}-{rng.getrandbits(64):016x}-b",
        ]
        for code in bank_codes
    }
    wrong_secret = f"whsec-attacker-{rng.getrandbits(64):016x}"
    iban_letters = {
        code: f"Z{tag[:1]}{chr(65 + i)}{chr(75 + i)}" for i, code in enumerate(bank_codes)
    }

    n_accounts = max(8, events // 10)
    n_closed = max(2, events // 50)
    n_reversals = max(3, events * 6 // 100)
    n_remittances = events - n_accounts - n_closed - n_reversals
    assert n_remittances > n_reversals

    # People: about 60% of account holders are registered (approved) freelancers before the run.
    people = []
    seen = set()
    while len(people) < n_accounts:
        cnic = make_cnic(rng)
        if cnic not in seen:
            seen.add(cnic)
            people.append(cnic)
    registered = {
        cnic: f"resil-{tag.lower()}-{i}" for i, cnic in enumerate(people) if rng.random() < 0.6
    }

    accounts: dict[str, AccountTruth] = {}
    serial = 0
    for i in range(n_accounts):
        bank = bank_codes[i % n_banks]
        serial += 1
        iban = make_iban(iban_letters[bank], 7_000_000 + serial)
        currency = rng.choices(["USD", "EUR", "GBP"], weights=[80, 12, 8])[0]
        opened_on = today - datetime.timedelta(days=rng.randint(400, 1200))
        accounts[iban] = AccountTruth(bank, iban, people[i], currency, opened_on)
    for iban in rng.sample(sorted(accounts), n_closed):
        accounts[iban].closed_on = today - datetime.timedelta(days=rng.randint(0, 3))
    unknown_ibans = [make_iban("ZZUN", 9_000_000 + i) for i in range(max(3, n_accounts // 8))]

    remittances: dict[tuple[str, str], dict[str, RemittanceTruth]] = {}
    event_seq = Counter()

    def next_id(bank: str) -> str:
        event_seq[bank] += 1
        return f"evt_{bank.lower()}_{event_seq[bank]:07d}"

    def make_remittance(bank: str, reference: str, iban: str, currency: str) -> RemittanceTruth:
        amount = Decimal(rng.randint(500, 2_500_000)) / 100
        usd = (amount * USD_RATES[currency]).quantize(CENT, ROUND_HALF_UP)
        rate = (
            PKR_PER_USD / USD_RATES[currency] + Decimal(rng.randint(-500, 500)) / 1000
        ).quantize(Decimal("0.0001"))
        retained = Decimal(0)
        if rng.random() < 0.4:
            retained = (amount * Decimal(rng.randint(0, 100)) / 100).quantize(
                CENT, rounding="ROUND_DOWN"
            )
        tax = Decimal(0)
        if rng.random() < 0.3:
            tax = (amount * rate / 100).quantize(CENT, ROUND_HALF_UP)
        return RemittanceTruth(
            bank=bank,
            reference=reference,
            iban=iban,
            amount=amount,
            currency=currency,
            usd_amount=usd,
            pkr_rate=rate,
            value_date=today - datetime.timedelta(days=rng.randint(0, 700)),
            purpose_code=rng.choice(IT_PURPOSE_CODES),
            retained_amount=retained,
            tax_withheld_pkr=tax,
            remitter_name=rng.choice(REMITTER_NAMES),
            remitter_country=rng.choice(COUNTRIES),
        )

    account_list = sorted(accounts)
    for i in range(n_remittances):
        bank = bank_codes[rng.randrange(n_banks)]
        reference = f"FT{tag}{i:08d}{bank[-1]}"
        if rng.random() < 0.9:
            iban = rng.choice(account_list)
            currency = accounts[iban].currency
        else:
            iban = rng.choice(unknown_ibans)
            currency = rng.choice(["USD", "EUR"])
        remittances[(bank, reference)] = {"A": make_remittance(bank, reference, iban, currency)}

    reversals: dict[tuple[str, str], datetime.date] = {}
    for key in rng.sample(sorted(remittances), n_reversals):
        rem = remittances[key]["A"]
        reversals[key] = min(today, rem.value_date + datetime.timedelta(days=rng.randint(0, 40)))

    # --- event bodies ---------------------------------------------------------------------------
    def rem_payload(rem: RemittanceTruth, event_id: str, *, short: bool = False) -> dict:
        fmt = short_money if short else money
        data = {
            "reference": rem.reference,
            "iban": rem.iban,
            "amount": fmt(rem.amount),
            "currency": rem.currency,
            "pkr_rate": str(rem.pkr_rate),
            "value_date": rem.value_date.isoformat(),
            "purpose_code": rem.purpose_code,
            "remitter": {"name": rem.remitter_name, "country": rem.remitter_country},
        }
        # Optional fields: omitted when default, or sent explicitly (identical either way).
        if rem.currency != "USD" or short:
            data["usd_amount"] = fmt(rem.usd_amount)
        if rem.retained_amount or short:
            data["retained_amount"] = fmt(rem.retained_amount)
        if rem.tax_withheld_pkr or short:
            data["tax_withheld_pkr"] = fmt(rem.tax_withheld_pkr)
        return {
            "id": event_id,
            "type": "remittance.credited",
            "created": _created(rng),
            "data": data,
        }

    Item = tuple  # (bank, event_id, type, group, payload)
    originals: list[Item] = []
    for iban, acct in accounts.items():
        cnic = acct.cnic if rng.random() < 0.5 else dashed(acct.cnic)
        event_id = next_id(acct.bank)
        payload = {
            "id": event_id,
            "type": "account.opened",
            "created": _created(rng),
            "data": {
                "iban": iban,
                "currency": acct.currency,
                "cnic": cnic,
                "opened_on": acct.opened_on.isoformat(),
            },
        }
        originals.append((acct.bank, event_id, "account.opened", f"acct:{iban}", payload))
        if acct.closed_on:
            event_id = next_id(acct.bank)
            payload = {
                "id": event_id,
                "type": "account.closed",
                "created": _created(rng),
                "data": {"iban": iban, "closed_on": acct.closed_on.isoformat()},
            }
            originals.append((acct.bank, event_id, "account.closed", f"close:{iban}", payload))
    for (bank, reference), variants in remittances.items():
        event_id = next_id(bank)
        payload = rem_payload(variants["A"], event_id)
        originals.append(
            (bank, event_id, "remittance.credited", f"rem:{bank}:{reference}", payload)
        )
    for (bank, reference), reversed_on in reversals.items():
        event_id = next_id(bank)
        data = {"reference": reference, "reversed_on": reversed_on.isoformat()}
        if rng.random() < 0.5:
            data["reason"] = rng.choice(["recalled by remitter", "fraud suspected", "returned"])
        payload = {
            "id": event_id,
            "type": "remittance.reversed",
            "created": _created(rng),
            "data": data,
        }
        originals.append(
            (bank, event_id, "remittance.reversed", f"rev:{bank}:{reference}", payload)
        )
    assert len(originals) == events, (len(originals), events)

    deliveries: list[Delivery] = []
    counts: Counter = Counter()

    def add(
        bank,
        event_id,
        event_type,
        group,
        body,
        kind,
        *,
        variant="A",
        signing="valid",
        expect=frozenset({200, 201}),
    ):
        deliveries.append(
            Delivery(
                seq=len(deliveries),
                bank=bank,
                body=body,
                event_id=event_id,
                event_type=event_type,
                kind=kind,
                group=group,
                variant=variant,
                signing=signing,
                expect=frozenset(expect),
            )
        )
        counts[kind] += 1

    valid_signings = ["valid"] * 6 + ["valid_rotated", "valid_upper", "valid_multi"]
    conflict_groups: set[str] = set()
    n_conflicts = events * 5 // 100
    rem_keys = sorted(remittances)
    for key in rng.sample(rem_keys, min(n_conflicts, len(rem_keys))):
        conflict_groups.add(f"rem:{key[0]}:{key[1]}")
    conflict_ok = frozenset({200, 201, 409})

    for bank, event_id, event_type, group, payload in originals:
        expect = conflict_ok if group in conflict_groups else frozenset({200, 201})
        add(
            bank,
            event_id,
            event_type,
            group,
            _dumps(payload),
            "original",
            signing=rng.choice(valid_signings),
            expect=expect,
        )

    # 30% redeliveries: byte-identical, reformatted (same id, parsed-identical), or a new id for
    # the same remittance / account / reversal.
    by_index = list(range(len(originals)))
    for index in rng.choices(by_index, k=events * 30 // 100):
        bank, event_id, event_type, group, payload = originals[index]
        expect = conflict_ok if group in conflict_groups else frozenset({200, 201})
        roll = rng.random()
        if roll < 0.6:
            add(
                bank,
                event_id,
                event_type,
                group,
                _dumps(payload),
                "redelivery",
                signing=rng.choice(valid_signings),
                expect=expect,
            )
        elif roll < 0.8 or event_type == "account.closed":
            again = json.loads(json.dumps(payload))
            again["created"] = _created(rng)
            if event_type == "remittance.credited":
                again = rem_payload(
                    remittances[(bank, payload["data"]["reference"])]["A"], event_id, short=True
                )
            add(
                bank,
                event_id,
                event_type,
                group,
                _dumps(again, style=rng.choice([1, 2])),
                "reformatted",
                signing=rng.choice(valid_signings),
                expect=expect,
            )
        else:
            again = json.loads(json.dumps(payload))
            new_id = next_id(bank)
            again["id"] = new_id
            again["created"] = _created(rng)
            add(
                bank,
                new_id,
                event_type,
                group,
                _dumps(again),
                "new_id",
                signing=rng.choice(valid_signings),
                expect=expect,
            )

    # 5% conflicting redeliveries: the same remittance with a different amount, under the same id
    # or a new one. Either variant may be recorded first; the other must get 409.
    conflict_list = sorted(conflict_groups)
    for i, group in enumerate(conflict_list):
        _, bank, reference = group.split(":", 2)
        original = remittances[(bank, reference)]["A"]
        changed = RemittanceTruth(**{**original.__dict__})
        changed.amount = original.amount + Decimal("1.00")
        changed.usd_amount = (changed.amount * USD_RATES[changed.currency]).quantize(
            CENT, ROUND_HALF_UP
        )
        changed.retained_amount = min(original.retained_amount, changed.amount)
        remittances[(bank, reference)]["B"] = changed
        original_id = next(o[1] for o in originals if o[3] == group)
        use_id = original_id if i % 2 == 0 else next_id(bank)
        add(
            bank,
            use_id,
            "remittance.credited",
            group,
            _dumps(rem_payload(changed, use_id)),
            "conflict",
            variant="B",
            signing=rng.choice(valid_signings),
            expect=conflict_ok,
        )

    # 5% bad signatures and 5% stale timestamps: half of them copies of real events (which also
    # arrive validly), half phantoms that only ever arrive badly signed and must not be stored.
    phantom_references: set[tuple[str, str]] = set()
    phantom_ibans: set[str] = set()

    def phantom(bank: str) -> tuple[str, str, str, dict]:
        event_id = next_id(bank)
        if rng.random() < 0.8:
            reference = f"PH{tag}{len(phantom_references):07d}"
            phantom_references.add((bank, reference))
            rem = make_remittance(bank, reference, rng.choice(account_list), "USD")
            return (
                event_id,
                "remittance.credited",
                f"phantom:{bank}:{reference}",
                rem_payload(rem, event_id),
            )
        iban = make_iban("ZZPH", 5_000_000 + len(phantom_ibans))
        phantom_ibans.add(iban)
        payload = {
            "id": event_id,
            "type": "account.opened",
            "created": _created(rng),
            "data": {
                "iban": iban,
                "currency": "USD",
                "cnic": make_cnic(rng),
                "opened_on": today.isoformat(),
            },
        }
        return event_id, "account.opened", f"phantom:{iban}", payload

    bad_kinds = ["wrong_secret", "tampered", "malformed", "missing"]
    for kind, signings, n in (
        ("bad_signature", bad_kinds, events * 5 // 100),
        ("stale", ["stale_past", "stale_future"], events * 5 // 100),
    ):
        for j in range(n):
            if j % 2 == 0:
                bank, event_id, event_type, group, payload = originals[
                    rng.randrange(len(originals))
                ]
                add(
                    bank,
                    event_id,
                    event_type,
                    group,
                    _dumps(payload),
                    kind,
                    signing=rng.choice(signings),
                    expect={401},
                )
            else:
                bank = rng.choice(bank_codes)
                event_id, event_type, group, payload = phantom(bank)
                add(
                    bank,
                    event_id,
                    event_type,
                    group,
                    _dumps(payload),
                    "phantom",
                    signing=rng.choice(signings),
                    expect={401},
                )
    # A few deliveries to a bank code the portal does not know.
    for _ in range(max(2, events // 500)):
        bank, event_id, event_type, group, payload = originals[rng.randrange(len(originals))]
        d_bank = f"NOSUCH{tag}"
        add(d_bank, event_id, event_type, group, _dumps(payload), "unknown_bank", expect={404})

    rng.shuffle(deliveries)
    for seq, delivery in enumerate(deliveries):
        delivery.seq = seq
    return Traffic(
        banks=banks,
        wrong_secret=wrong_secret,
        registered=registered,
        accounts=accounts,
        remittances=remittances,
        reversals=reversals,
        phantom_references=phantom_references,
        phantom_ibans=phantom_ibans,
        deliveries=deliveries,
        unique_events=events,
        counts=counts,
    )


def order_report(traffic: Traffic) -> dict[str, int]:
    """How often the shuffle sent something before what it refers to (in dispatch order)."""
    first: dict[str, int] = {}
    for d in traffic.deliveries:
        if d.kind in ("bad_signature", "stale", "phantom", "unknown_bank"):
            continue
        first.setdefault(d.group, d.seq)
    reversal_first = sum(
        1
        for (bank, ref) in traffic.reversals
        if first[f"rev:{bank}:{ref}"] < first[f"rem:{bank}:{ref}"]
    )
    remittance_before_account = 0
    for (bank, ref), variants in traffic.remittances.items():
        iban = variants["A"].iban
        if iban in traffic.accounts and first[f"rem:{bank}:{ref}"] < first[f"acct:{iban}"]:
            remittance_before_account += 1
    closed_before_opened = sum(
        1
        for iban, acct in traffic.accounts.items()
        if acct.closed_on and first[f"close:{iban}"] < first[f"acct:{iban}"]
    )
    return {
        "reversal_before_remittance": reversal_first,
        "remittance_before_account_opened": remittance_before_account,
        "account_closed_before_opened": closed_before_opened,
    }


def unix_now() -> int:
    return int(time.time())
