"""Receipts: the one ingestion path for money received (bank remittances and Stripe payments),
reversals, and linking receipts to accounts and freelancers."""

import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from freelancers.models import Freelancer
from payments.models import Bank, DollarAccount, PurposeCode, Receipt, ReceiptReversal
from payments.services.locking import db_serialize_on
from payments.signals import receipts_changed


def _month(day: datetime.date) -> datetime.date:
    return day.replace(day=1)


def receipt_key(*, source: str, bank_id: int | None, reference: str) -> str:
    """The advisory-lock key of a receipt: every writer of one receipt serialises on it."""
    if source == Receipt.Source.BANK:
        return f"receipt:bank:{bank_id or 0}:{reference}"
    return f"receipt:{source}:{reference}"


def _receipt_key(*, source: str, bank: Bank | None, reference: str) -> str:
    return receipt_key(source=source, bank_id=bank.pk if bank else None, reference=reference)


def _key_filter(*, source: str, bank: Bank | None, reference: str) -> Q:
    if source == Receipt.Source.BANK:
        return Q(source=source, bank=bank, reference=reference)
    return Q(source=source, reference=reference)


def receipt_record(
    *,
    source: str,
    bank: Bank | None,
    reference: str,
    amount: Decimal,
    currency: str,
    usd_amount: Decimal,
    pkr_rate: Decimal,
    value_date: datetime.date,
    purpose_code: PurposeCode,
    iban: str = "",
    retained_amount: Decimal = Decimal("0.00"),
    tax_withheld_pkr: Decimal = Decimal("0.00"),
    remitter_name: str = "",
    remitter_country: str = "",
    freelancer: Freelancer | None = None,
) -> tuple[Receipt, bool]:
    """Record a receipt once; return ``(receipt, created)``.

    Idempotent: the key is (bank, reference) for bank receipts and the reference (payment intent id)
    for Stripe ones, enforced by Receipt's unique constraints; a second call with the same key
    returns the stored receipt untouched and ``created=False`` (the caller decides whether its
    fields match). Serialises on the key (advisory lock on PostgreSQL) so concurrent callers see
    each other's commit. Links the receipt, at insert time, to the DollarAccount with that IBAN and
    its freelancer (one indexed lookup), or to ``freelancer`` when given and no account matches. A
    reversal recorded before the receipt is applied at once. Sends ``receipts_changed`` inside the
    transaction. Raises IntegrityError only if the database refuses the row (check constraints).
    """
    with transaction.atomic(savepoint=False):
        db_serialize_on(key=_receipt_key(source=source, bank=bank, reference=reference))
        existing = Receipt.objects.filter(
            _key_filter(source=source, bank=bank, reference=reference)
        ).first()
        if existing is not None:
            return existing, False
        account_id, freelancer_id = None, freelancer.pk if freelancer else None
        if iban:
            row = DollarAccount.objects.filter(iban=iban).values_list("id", "freelancer_id").first()
            if row:
                account_id, freelancer_id = row[0], row[1] or freelancer_id
        reversal = (
            ReceiptReversal.objects.filter(
                _key_filter(source=source, bank=bank, reference=reference)
            )
            .values_list("reversed_on", "reason")
            .first()
        )
        receipt = Receipt.objects.create(
            source=source,
            bank=bank,
            reference=reference,
            iban=iban,
            account_id=account_id,
            freelancer_id=freelancer_id,
            amount=amount,
            currency=currency,
            usd_amount=usd_amount,
            pkr_rate=pkr_rate,
            value_date=value_date,
            purpose_code=purpose_code,
            retained_amount=retained_amount,
            tax_withheld_pkr=tax_withheld_pkr,
            remitter_name=remitter_name,
            remitter_country=remitter_country,
            reversed_on=reversal[0] if reversal else None,
            reversal_reason=reversal[1] if reversal else "",
        )
        receipts_changed.send(sender=Receipt, months={_month(value_date)}, added=[receipt.pk])
        return receipt, True


def receipt_reverse(
    *,
    source: str,
    bank: Bank | None,
    reference: str,
    reversed_on: datetime.date,
    reason: str = "",
) -> tuple[ReceiptReversal, bool]:
    """Record the reversal of a receipt; return ``(reversal, created)``.

    Idempotent: one reversal per receipt key (unique constraint); a second call returns the first
    reversal and ``created=False`` whatever its date. The receipt, if recorded, is marked reversed
    (it stays on record and stops counting); if not, ``receipt_record`` applies the reversal when
    the receipt arrives. Serialises on the receipt key. Sends ``receipts_changed`` when a receipt
    changed.
    """
    with transaction.atomic(savepoint=False):
        db_serialize_on(key=_receipt_key(source=source, bank=bank, reference=reference))
        key = _key_filter(source=source, bank=bank, reference=reference)
        existing = ReceiptReversal.objects.filter(key).first()
        if existing is not None:
            return existing, False
        reversal = ReceiptReversal.objects.create(
            source=source, bank=bank, reference=reference, reversed_on=reversed_on, reason=reason
        )
        receipt = (
            Receipt.objects.filter(key, reversed_on__isnull=True)
            .values_list("id", "value_date")
            .first()
        )
        if receipt:
            Receipt.objects.filter(pk=receipt[0]).update(
                reversed_on=reversed_on, reversal_reason=reason
            )
            receipts_changed.send(sender=Receipt, months={_month(receipt[1])})
        return reversal, True


def receipts_link_account(*, account: DollarAccount) -> int:
    """Link every receipt paid to ``account``'s IBAN to the account and its freelancer.

    Idempotent (set-based UPDATEs of receipts whose links differ); returns how many receipts changed
    and sends ``receipts_changed`` for their months. Run inside the caller's transaction.
    """
    with transaction.atomic(savepoint=False):
        stale = Receipt.objects.filter(iban=account.iban).exclude(
            Q(account_id=account.pk)
            & (
                Q(freelancer_id=account.freelancer_id)
                if account.freelancer_id
                else Q(freelancer__isnull=True)
            )
        )
        months = {_month(d) for d in stale.dates("value_date", "month")}
        if not months:
            return 0
        changed = stale.update(account_id=account.pk, freelancer_id=account.freelancer_id)
        receipts_changed.send(sender=Receipt, months=months)
        return changed


def accounts_link_freelancer(*, freelancer: Freelancer) -> int:
    """Link the accounts opened for ``freelancer``'s CNIC (while none was approved) and their
    receipts.

    Called when a registration is approved; only approved freelancers are linked. Idempotent;
    returns the number of receipts re-matched. Run inside the approving transaction.
    """
    if not freelancer.cnic or freelancer.status != Freelancer.Status.APPROVED:
        return 0
    changed = 0
    with transaction.atomic(savepoint=False):
        accounts = list(
            DollarAccount.objects.filter(holder_cnic=freelancer.cnic, freelancer__isnull=True)
        )
        for account in accounts:
            account.freelancer = freelancer
            account.save(update_fields=["freelancer"])
            changed += receipts_link_account(account=account)
    return changed


def receipts_link_sweep(*, batch: int = 500) -> int:
    """Safety net: link whatever is still unlinked, and apply reversals that a race left unapplied.

    - accounts whose holder's registration is approved but which have no freelancer;
    - receipts paid to a known IBAN without that account (or its freelancer);
    - receipts not marked reversed although their reversal is recorded.
    Idempotent, bounded by ``batch`` per kind; returns how many rows changed.
    """
    changed = 0
    approved = Freelancer.objects.filter(
        cnic=OuterRef("holder_cnic"), status=Freelancer.Status.APPROVED
    )
    account_ids = list(
        DollarAccount.objects.filter(freelancer__isnull=True)
        .filter(Exists(approved))
        .values_list("id", flat=True)[:batch]
    )
    for account_id in account_ids:
        with transaction.atomic():
            account = DollarAccount.objects.select_for_update().get(pk=account_id)
            freelancer = Freelancer.objects.filter(
                cnic=account.holder_cnic, status=Freelancer.Status.APPROVED
            ).first()
            if account.freelancer_id is None and freelancer is not None:
                changed += accounts_link_freelancer(freelancer=freelancer) or 1
    # Unmatched receipts (partial index on iban WHERE account IS NULL) paid to a known IBAN, and
    # matched receipts whose account has a freelancer they lack.
    unlinked_ibans = list(
        Receipt.objects.filter(account__isnull=True, iban__gt="")
        .filter(Exists(DollarAccount.objects.filter(iban=OuterRef("iban"))))
        .values_list("iban", flat=True)
        .distinct()[:batch]
    )
    unlinked_ibans += list(
        DollarAccount.objects.filter(freelancer__isnull=False)
        .filter(Exists(Receipt.objects.filter(account_id=OuterRef("pk"), freelancer__isnull=True)))
        .values_list("iban", flat=True)[:batch]
    )
    for iban in dict.fromkeys(unlinked_ibans):
        with transaction.atomic():
            account = DollarAccount.objects.filter(iban=iban).first()
            if account is not None:
                changed += receipts_link_account(account=account)
    # Driven from the (small) reversal table, probing Receipt's unique (bank, reference) index.
    pending = list(
        ReceiptReversal.objects.filter(
            Exists(
                Receipt.objects.filter(
                    Q(source=Receipt.Source.STRIPE) | Q(bank=OuterRef("bank")),
                    source=OuterRef("source"),
                    reference=OuterRef("reference"),
                    reversed_on__isnull=True,
                )
            )
        ).select_related("bank")[:batch]
    )
    for reversal in pending:
        with transaction.atomic():
            db_serialize_on(
                key=_receipt_key(
                    source=reversal.source, bank=reversal.bank, reference=reversal.reference
                )
            )
            receipt = (
                Receipt.objects.filter(
                    _key_filter(
                        source=reversal.source, bank=reversal.bank, reference=reversal.reference
                    ),
                    reversed_on__isnull=True,
                )
                .select_for_update()
                .first()
            )
            if receipt is not None:
                receipt.reversed_on = reversal.reversed_on
                receipt.reversal_reason = reversal.reason
                receipt.save(update_fields=["reversed_on", "reversal_reason"])
                receipts_changed.send(sender=Receipt, months={_month(receipt.value_date)})
                changed += 1
    return changed
