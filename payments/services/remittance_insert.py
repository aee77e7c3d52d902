"""A new remittance in one statement (PostgreSQL): the bank webhook's common case, made cheap.

Almost every ``remittance.credited`` delivery is a new event for a new reference. The general path
(``bank_webhooks._store`` -> ``receipts.receipt_record``) answers it with about ten statements and
the ORM around each; this module answers it with one data-modifying statement after the receipt
key's advisory lock:

- the purpose code is checked (known, not retired), the account looked up by IBAN and an early
  reversal of the reference looked up, all in the statement's snapshot, taken after the lock;
- the event (unique per bank and event id), the receipt (unique per bank and reference) and the
  delivery record are inserted, each only if the one before it was (``ON CONFLICT DO NOTHING``
  and ``RETURNING`` chain them), and the event only if the reference is not recorded yet (exact
  under the lock), so the statement writes all three rows or none;
- a redelivery of an event stored with the same data (and a purpose code still valid) is logged
  as a duplicate by the same statement, which then writes that delivery row alone;
- the statistics marks (``receipts_changed`` receivers, given the statement ``batch``) follow in
  the same round trip, naming the receipt by an id taken beforehand from its sequence, and so
  does the COMMIT when the caller's block is the outermost: one round trip in all.

Anything else (a reference already recorded, a purpose code to refuse, a conflict, a race) is
reported to the caller, which takes the general path: that path stays the one definition of every
answer, and this one must leave exactly the rows it would (tests/payments/test_remittance_insert.py
compares the two).
"""

import datetime
import json
import os
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection

from config.db import fetch_prepared, fetch_prepared_batch
from payments.models import (
    BankEvent,
    DollarAccount,
    PurposeCode,
    Receipt,
    ReceiptReversal,
    WebhookDelivery,
)
from payments.services.locking import db_serialize_statement
from payments.services.receipts import receipt_key
from payments.signals import receipts_changed

# Table names are the models' own, so a rename in Django reaches this SQL.
_T = {
    "purpose": PurposeCode._meta.db_table,
    "account": DollarAccount._meta.db_table,
    "reversal": ReceiptReversal._meta.db_table,
    "event": BankEvent._meta.db_table,
    "receipt": Receipt._meta.db_table,
    "delivery": WebhookDelivery._meta.db_table,
}

_SQL = """
WITH
p AS (SELECT id, retired FROM {purpose} WHERE code = %(purpose_code)s),
a AS (SELECT id, freelancer_id FROM {account} WHERE iban = %(iban)s),
v AS (
    SELECT reversed_on, reason FROM {reversal}
    WHERE source = 'bank' AND bank_id = %(bank_id)s AND reference = %(reference)s
),
d AS (SELECT nextval(pg_get_serial_sequence('{delivery}', 'id')) AS id),
e AS (
    INSERT INTO {event} (bank_id, event_id, type, created, data, outcome, delivery_id, received_at)
    SELECT %(bank_id)s, %(event_id)s, 'remittance.credited', %(created)s, %(data)s::jsonb,
           'applied', d.id, %(now)s
    FROM d, p WHERE NOT p.retired AND NOT EXISTS (
        SELECT FROM {receipt}
        WHERE source = 'bank' AND bank_id = %(bank_id)s AND reference = %(reference)s
    )
    ON CONFLICT (bank_id, event_id) DO NOTHING
    RETURNING delivery_id
),
r AS (
    -- No ON CONFLICT: under the lock the reference is known to be new; should a writer that
    -- does not take the lock have recorded it, the unique index raises and nothing commits.
    INSERT INTO {receipt} (
        id, source, bank_id, reference, iban, account_id, freelancer_id, amount, currency,
        usd_amount, pkr_rate, value_date, purpose_code_id, retained_amount, tax_withheld_pkr,
        remitter_name, remitter_country, reversed_on, reversal_reason, created_at
    )
    SELECT %(receipt_id)s, 'bank', %(bank_id)s, %(reference)s, %(iban)s, a.id, a.freelancer_id,
           %(amount)s, %(currency)s, %(usd_amount)s, %(pkr_rate)s, %(value_date)s, p.id,
           %(retained)s, %(tax)s, %(remitter_name)s, %(remitter_country)s, v.reversed_on,
           coalesce(v.reason, ''), %(now)s
    FROM e CROSS JOIN p LEFT JOIN a ON true LEFT JOIN v ON true
    RETURNING id
),
s AS (SELECT type, data FROM {event} WHERE bank_id = %(bank_id)s AND event_id = %(event_id)s),
w AS (
    INSERT INTO {delivery} (
        id, bank_id, bank_code, received_at, remote_addr, signature_header, content_type,
        content_length, user_agent, body, body_truncated, body_sha256, signature_verdict,
        outcome, response_status, event_id, event_type, detail
    )
    SELECT d.id, %(bank_id)s, %(bank_code)s, %(now)s, %(remote_addr)s, %(signature_header)s,
           %(content_type)s, %(content_length)s, %(user_agent)s, n.body, n.body_truncated,
           %(body_sha256)s, 'valid', n.outcome, n.status, %(event_id)s, 'remittance.credited', ''
    FROM d CROSS JOIN LATERAL (
        -- Recorded: the event and its receipt.
        SELECT %(body)s AS body, %(body_truncated)s AS body_truncated, 'accepted' AS outcome,
               201 AS status
        FROM e, r
        UNION ALL
        -- A redelivery of a stored event with the same data (jsonb equality: parsed values, as
        -- the contract's "identical"), its purpose code still valid: logged as a duplicate,
        -- with the body as the general path keeps it.
        SELECT coalesce(%(duplicate_body)s, %(body)s),
               coalesce(%(duplicate_body_truncated)s, %(body_truncated)s), 'duplicate', 200
        FROM s, p
        WHERE NOT p.retired AND s.type = 'remittance.credited' AND s.data = %(data)s::jsonb
          AND NOT EXISTS (SELECT FROM e)
    ) AS n
    RETURNING response_status
)
SELECT (SELECT count(*) FROM e), (SELECT id FROM r), (SELECT response_status FROM w)
""".format(**_T)  # noqa: S608 - table names from the models, values as parameters


# Receipt ids are taken from the receipts' sequence in blocks, per process and database, so the
# statistics marks that name a receipt can be queued behind its insert (a sequence never gives
# an id twice; ids not used leave gaps, as rolled-back inserts do).
RECEIPT_ID_BLOCK = 32
_IDS_SQL = (
    f"SELECT nextval(pg_get_serial_sequence('{Receipt._meta.db_table}', 'id'))"  # noqa: S608
    " FROM generate_series(1, %s)"
)
_receipt_ids: dict[tuple[int, str], list[int]] = {}


def _receipt_id_take() -> int:
    key = (os.getpid(), connection.settings_dict["NAME"])
    ids = _receipt_ids.get(key)
    if not ids:
        ids = _receipt_ids[key] = [row[0] for row in fetch_prepared(_IDS_SQL, [RECEIPT_ID_BLOCK])]
        ids.reverse()
    return ids.pop()


@dataclass(frozen=True)
class InsertOutcome:
    """What the statement did: recorded the receipt (``receipt_id`` is set), logged a
    redelivery of the stored event as a duplicate (``duplicate``), or nothing at all."""

    receipt_id: int | None
    duplicate: bool


def remittance_insert_new(
    *,
    bank_id: int,
    event_id: str,
    created: datetime.datetime,
    data: dict,
    now: datetime.datetime,
    delivery: dict,
    commit: bool = False,
) -> InsertOutcome:
    """Record a new ``remittance.credited`` event, its receipt and its delivery in one statement.

    ``data`` is the event's canonical data (``bank_webhooks.event_parse``); ``delivery`` holds the
    WebhookDelivery columns the caller knows (bank_code, remote_addr, signature_header,
    content_type, content_length, user_agent, body, body_truncated, body_sha256), and may hold
    duplicate_body and duplicate_body_truncated: a duplicate's log row, where it differs from the
    accepted one's. Returns whether a redelivery of the stored event was logged as a duplicate
    instead. PostgreSQL only; must run inside ``transaction.atomic``. Serialises on the receipt
    key like ``receipt_record`` (so an early reversal committed before the lock is seen, and one
    committed after it sees this receipt). Sends ``receipts_changed`` (naming the receipt, with
    the batch) before the statements run; ``commit=True`` (a caller whose atomic block holds
    nothing else) commits in the same round trip when that block is the outermost
    (``config.db.fetch_prepared_batch``).
    """
    reference = data["reference"]
    value_date = datetime.date.fromisoformat(data["value_date"])
    receipt_id = _receipt_id_take()
    params = {
        "receipt_id": receipt_id,
        "bank_id": bank_id,
        "event_id": event_id,
        "created": created,
        "data": json.dumps(data),
        "now": now,
        "purpose_code": data["purpose_code"],
        "reference": reference,
        "iban": data["iban"],
        "amount": Decimal(data["amount"]),
        "currency": data["currency"],
        "usd_amount": Decimal(data["usd_amount"]),
        "pkr_rate": Decimal(data["pkr_rate"]),
        "value_date": value_date,
        "retained": Decimal(data["retained_amount"]),
        "tax": Decimal(data["tax_withheld_pkr"]),
        "remitter_name": data["remitter"]["name"],
        "remitter_country": data["remitter"]["country"],
        "duplicate_body": None,
        "duplicate_body_truncated": None,
        **delivery,
    }
    # The lock, then the statement (a snapshot taken after the lock), then the receivers' marks.
    batch = [
        db_serialize_statement(
            key=receipt_key(source=Receipt.Source.BANK, bank_id=bank_id, reference=reference)
        ),
        (_SQL, params),
    ]
    receipts_changed.send(
        sender=Receipt, months={value_date.replace(day=1)}, added=[receipt_id], batch=batch
    )
    _, [(events, inserted, status)], *_ = fetch_prepared_batch(batch, commit=commit)
    recorded = events == 1 and inserted == receipt_id and status == 201
    return InsertOutcome(receipt_id if recorded else None, status == 200)
