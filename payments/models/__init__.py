"""payments models, one module per area; every module lists its models in __all__."""

from payments.models.banks import *  # noqa: F403
from payments.models.core import (
    MONEY,
    Bank,
    BankSecret,
    DollarAccount,
    PurposeCode,
    Receipt,
)
from payments.models.incentives import *  # noqa: F403
from payments.models.stripe import *  # noqa: F403

__all__ = ["MONEY", "Bank", "BankSecret", "DollarAccount", "PurposeCode", "Receipt"]
