"""A logging filter that masks CNICs (13 digits, with or without dashes) in every record."""

import logging
import re

CNIC_RE = re.compile(r"(?<!\d)(\d{5})-?(\d{7})-?(\d)(?!\d)")


def mask_cnic_text(text: str) -> str:
    """Replace every CNIC-shaped number with its masked form: 35202-*******-3."""
    return CNIC_RE.sub(lambda m: f"{m.group(1)}-*******-{m.group(3)}", text)


class MaskPIIFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_cnic_text(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True
