"""Serialising writers on one business key (a bank's reference, an IBAN)."""

from django.db import connection

from config.db import fetch_prepared


def db_serialize_on(*, key: str) -> None:
    """Hold a lock on ``key`` until the current transaction ends.

    On PostgreSQL a transaction-level advisory lock, so two transactions about the same key (a
    remittance and its reversal, two deliveries of one event) run one after the other and the second
    sees what the first committed. On SQLite every write transaction already begins IMMEDIATE and
    holds the database's one write lock, so nothing is needed. Must be called inside
    ``transaction.atomic``.
    """
    if connection.vendor == "postgresql":
        fetch_prepared(*db_serialize_statement(key=key))


def db_serialize_statement(*, key: str) -> tuple[str, list]:
    """The PostgreSQL statement ``db_serialize_on`` runs, for a caller that sends it in one
    round trip with the statements it guards (``config.db.fetch_prepared_batch``)."""
    return "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key]
