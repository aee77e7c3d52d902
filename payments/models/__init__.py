"""payments models, one module per area; import every model here so Django finds it."""

from payments.models.core import (
    MONEY,
    Bank,
    BankSecret,
    DollarAccount,
    PurposeCode,
    Receipt,
)

__all__ = ["MONEY", "Bank", "BankSecret", "DollarAccount", "PurposeCode", "Receipt"]
