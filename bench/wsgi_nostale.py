"""Profiling experiment only (never a fix): the portal with statistics' stale marking disconnected.

``BENCH_WSGI=bench.wsgi_nostale:application .venv/bin/python -m bench.ingest --no-peer`` measures
what the bank webhook costs without ``registry``'s ``receipts_changed`` receiver (the stale marks
appended inside every ingestion transaction and the debounced refresh task), to show how much of
the webhook's time statistics take. Statistics are NOT kept current in this mode.
"""

from config.wsgi import application  # noqa: F401 - sets Django up
from payments.signals import receipts_changed

if not receipts_changed.disconnect(dispatch_uid="registry_mark_stale"):
    raise RuntimeError("registry's receipts_changed receiver was not found: update the experiment")
