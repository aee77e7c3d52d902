"""Receivers for signals from the lower apps (connected in RegistryConfig.ready())."""

from config.celery import enqueue_debounced_on_commit
from registry.services import statistics_mark_stale

# A refresh task published by this process starts this many seconds later and covers every
# receipt committed until then.
REFRESH_DEBOUNCE_SECONDS = 1.0


def receipts_changed_mark_stale(sender, months, added=None, batch=None, **kwargs) -> None:
    """Mark the months stale in the sender's transaction (or in its ``batch``); recompute after
    it commits (at most one refresh task per second per process: a burst of webhooks shares one
    run)."""
    if not months:
        return
    statistics_mark_stale(months=months, added=added, batch=batch)

    from registry.tasks import statistics_refresh_task

    enqueue_debounced_on_commit(statistics_refresh_task, window=REFRESH_DEBOUNCE_SECONDS)
