"""Banks, their webhook secrets, the purpose-code table, and dollar accounts."""

import datetime
import re

from django.db import transaction
from django.utils import timezone

from freelancers.models import Freelancer
from payments.models import AccountClosure, Bank, BankSecret, DollarAccount, PurposeCode
from payments.services.locking import db_serialize_on
from payments.services.receipts import receipts_link_account

BANK_CODE_RE = re.compile(r"^[A-Z0-9]{2,12}$")


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
    """Revoke a webhook secret: deliveries signed only with it get 401 from now on. Idempotent."""
    BankSecret.objects.filter(pk=bank_secret.pk, active=True).update(
        active=False, revoked_at=timezone.now()
    )


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
