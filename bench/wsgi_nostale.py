"""Profiling experiment only (never a fix): the portal with statistics' stale marking disconnected.

``BENCH_WSGI=bench.wsgi_nostale:application .venv/bin/python -m bench.ingest --no-peer`` measures
what the bank webhook costs without ``registry``'s ``receipts_changed`` receiver (the upsert of the
month's and fiscal year's period rows inside every ingestion transaction), to show how much of the
webhook's time that row lock takes. Statistics are NOT kept current in this mode.
"""

from config.wsgi import application  # noqa: F401 - sets Django up
from payments.signals import receipts_changed

if not receipts_changed.disconnect(dispatch_uid="registry_mark_stale"):
    raise RuntimeError("registry's receipts_changed receiver was not found: update the experiment")
