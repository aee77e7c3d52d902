"""The payments admin, one module per area."""

from payments.admin import banks, incentives, stripe  # noqa: F401
