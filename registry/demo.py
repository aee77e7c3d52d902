"""Demo statistics: rebuild every figure from the demo receipts (idempotent)."""

from registry.services import statistics_rebuild


def load_statistics() -> int:
    """Rebuild the statistics from all receipts; returns how many periods were computed."""
    return statistics_rebuild()
