"""Banks, their webhook secrets, the purpose-code table, and dollar accounts."""

import datetime
import re
import time

from django.db import transaction
from django.utils import timezone

from config.db import fetch_prepared, retry_if_stale
from freelancers.models import Freelancer
from payments.models import AccountClosure, Bank, BankSecret, DollarAccount, PurposeCode
from payments.services.locking import db_serialize_on
from payments.services.receipts import receipts_link_account

BANK_CODE_RE = re.compile(r"^[A-Z0-9]{2,12}$")
# How long a process reuses an enabled bank and its active secrets for the webhook. A bank
# disabled or a secret revoked stops working at once in the process that saved the change and
# within this many seconds in every other process (docs/bank-webhooks.md).
BANK_CREDENTIALS_SECONDS = 5.0
_credentials: dict[str, tuple[float, Bank, list[str]]] = {}
_clock = time.monotonic  # tests move it
_CREDENTIALS_SQL = (
    f"SELECT b.id, b.name, s.secret, s.active FROM {Bank._meta.db_table} b"  # noqa: S608
    f" LEFT JOIN {BankSecret._meta.db_table} s ON s.bank_id = b.id"
    " WHERE b.code = %s AND b.enabled"
)


class AccountConflict(Exception):
    """The bank reported something that contradicts what the portal already holds."""


def bank_add(*, code: str, name: str, secret: str) -> tuple[Bank, BankSecret, bool]:
    """Create a bank with its first webhook secret, or add ``secret`` to an existing bank (rotation:
    the older secrets stay active until revoked). Idempotent for a secret the bank already holds.
    Returns ``(bank, secret, bank_created)``. Raises ValueError for a code that is not 2-12
    upper-case letters/digits or an empty secret."""
    if not BANK_CODE_RE.match(code):
        raise ValueError("bank code must be 2-12 upper-case letters or digits")
    if len(secret) < 16:
        raise ValueError("secret must be at least 16 characters")
    with transaction.atomic():
        bank, created = Bank.objects.get_or_create(code=code, defaults={"name": name})
        if not created and name and bank.name != name:
            bank.name = name
            bank.save(update_fields=["name"])
        bank_secret, _ = BankSecret.objects.get_or_create(bank=bank, secret=secret)
    return bank, bank_secret, created


def bank_secret_revoke(*, bank_secret: BankSecret) -> None:
    """Revoke a webhook secret: deliveries signed only with it get 401 from now on (in other
    processes within ``BANK_CREDENTIALS_SECONDS``). Idempotent."""
    BankSecret.objects.filter(pk=bank_secret.pk, active=True).update(
        active=False, revoked_at=timezone.now()
    )
    bank_credentials_forget()
    transaction.on_commit(bank_credentials_forget)


def bank_credentials(*, code: str) -> tuple[Bank | None, list[str]]:
    """The enabled bank with that code and its active webhook secrets; (None, []) for a code that
    is malformed, unknown or disabled.

    Every delivery needs this before anything else, so an enabled bank is kept per process for
    ``BANK_CREDENTIALS_SECONDS`` (a round trip saved per delivery); unknown codes are not kept (a
    flood of made-up codes cannot grow the cache). One raw query, prepared on PostgreSQL.
    """
    if not BANK_CODE_RE.match(code):
        return None, []
    now = _clock()
    kept = _credentials.get(code)
    if kept and kept[0] > now:
        return kept[1], list(kept[2])
    # Often a request's first query: on a kept connection the server may have closed, it is sent
    # without Django's health check round trip, and sent again on a new connection if it failed.
    rows = retry_if_stale(lambda: fetch_prepared(_CREDENTIALS_SQL, [code]))
    if not rows:
        return None, []
    bank = Bank(id=rows[0][0], code=code, name=rows[0][1], enabled=True)
    bank._state.adding = False
    bank._state.db = "default"
    secrets = [secret for _, _, secret, active in rows if secret and active]
    _credentials[code] = (now + BANK_CREDENTIALS_SECONDS, bank, secrets)
    return bank, list(secrets)


def bank_credentials_forget(**kwargs) -> None:
    """Drop this process's kept banks and secrets (a bank or secret was saved or deleted; also a
    receiver of their post_save and post_delete)."""
    _credentials.clear()


def purpose_code_set(
    *, code: str, description: str, category: str, is_it: bool = True, retired: bool = False
) -> tuple[PurposeCode, bool]:
    """Create or update a row of the purpose-code table. Idempotent. Returns (row, created)."""
    return PurposeCode.objects.update_or_create(
        code=code,
        defaults={
            "description": description,
            "category": category,
            "is_it": is_it,
            "retired": retired,
        },
    )


def account_open(
    *, bank: Bank, iban: str, currency: str, cnic: str, opened_on: datetime.date
) -> tuple[DollarAccount, bool]:
    """Record a dollar account a bank opened; return ``(account, created)``.

    Idempotent by IBAN: the same IBAN again with the same CNIC returns the stored account
    (``created=False``); with another CNIC raises AccountConflict. A new account is linked to the
    approved freelancer with that CNIC, if any; a closure reported earlier is applied; receipts
    paid to the IBAN before the account was known are linked (``receipts_changed`` is sent).
    Serialises on the IBAN.
    """
    with transaction.atomic(savepoint=False):
        db_serialize_on(key=f"iban:{iban}")
        existing = DollarAccount.objects.filter(iban=iban).first()
        if existing is not None:
            if existing.holder_cnic != cnic:
                raise AccountConflict(f"IBAN {iban} is already recorded for another CNIC")
            return existing, False
        freelancer_id = (
            Freelancer.objects.filter(cnic=cnic, status=Freelancer.Status.APPROVED)
            .values_list("id", flat=True)
            .first()
        )
        closed_on = AccountClosure.objects.filter(iban=iban).values_list("closed_on", flat=True)
        account = DollarAccount.objects.create(
            iban=iban,
            currency=currency,
            holder_cnic=cnic,
            bank=bank,
            freelancer_id=freelancer_id,
            opened_on=opened_on,
            closed_on=closed_on.first(),
        )
        receipts_link_account(account=account)
        return account, True


def account_close(*, bank: Bank, iban: str, closed_on: datetime.date) -> bool:
    """Record that an account was closed; return True when this changed anything.

    Idempotent: the same closure again returns False; a closure with another date than the one
    recorded raises AccountConflict. A closure for an IBAN the portal does not know is kept and
    applied when the account is opened. Serialises on the IBAN.
    """
    with transaction.atomic(savepoint=False):
        db_serialize_on(key=f"iban:{iban}")
        account = DollarAccount.objects.filter(iban=iban).first()
        recorded = (
            account.closed_on
            if account is not None
            else AccountClosure.objects.filter(iban=iban)
            .values_list("closed_on", flat=True)
            .first()
        )
        if recorded is not None:
            if recorded != closed_on:
                raise AccountConflict(f"account {iban} is already recorded closed on {recorded}")
            return False
        AccountClosure.objects.update_or_create(
            iban=iban, defaults={"bank": bank, "closed_on": closed_on}
        )
        if account is not None:
            DollarAccount.objects.filter(pk=account.pk).update(closed_on=closed_on)
        return True
