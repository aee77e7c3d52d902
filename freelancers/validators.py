"""Field rules shared by forms, serializers and services."""

import re

from django.core.exceptions import ValidationError
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.pk import cnic as stdnum_cnic

MOBILE_RE = re.compile(r"^(?:\+92|0092|92|0)(3\d{9})$")


def normalise_cnic(value: str) -> str:
    """Validate a CNIC with python-stdnum and return its 13 digits without dashes."""
    try:
        return stdnum_cnic.validate(value or "")
    except StdnumError:
        raise ValidationError(
            "Enter a valid CNIC, e.g. 35202-1234567-1 (13 digits).", code="invalid_cnic"
        )


def mask_cnic(cnic: str) -> str:
    digits = re.sub(r"\D", "", cnic or "")
    if len(digits) != 13:
        return ""
    return f"{digits[:5]}-*******-{digits[-1]}"


def normalise_mobile(value: str) -> str:
    """A Pakistani mobile number (03001234567, +923001234567, 0300-1234567) as +923001234567."""
    compact = re.sub(r"[\s\-()]", "", value or "")
    match = MOBILE_RE.match(compact)
    if not match:
        raise ValidationError(
            "Enter a Pakistani mobile number, e.g. 0300 1234567 or +92 300 1234567.",
            code="invalid_mobile",
        )
    return "+92" + match.group(1)
