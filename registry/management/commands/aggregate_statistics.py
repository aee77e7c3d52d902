"""Recompute the national statistics synchronously; returns when every figure is current."""

import contextlib
import sys

from django.core.management.base import BaseCommand

from registry.services import (
    statistics_rebuild,
    statistics_rebuild_size,
    statistics_refresh,
    statistics_stale_periods,
)


class Command(BaseCommand):
    help = "Recompute stale statistics periods (or, with --full, every period from all receipts)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--full", action="store_true", help="Rebuild every period from all receipts."
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, full: bool, no_progress: bool, **options):
        stale = None if full else statistics_stale_periods()
        total = statistics_rebuild_size() if full else len(stale)
        with self._progress(
            total, "full rebuild" if full else "stale periods", show=not no_progress
        ) as update:
            if full:
                done = statistics_rebuild(progress=update)
            else:
                done = statistics_refresh(stale=stale, progress=update)
        self.stdout.write(self.style.SUCCESS(f"Statistics current: {done} periods recomputed."))

    @staticmethod
    @contextlib.contextmanager
    def _progress(total: int, desc: str, *, show: bool):
        """A tqdm bar on stderr when it is a terminal (not in cron's or a container's log, and
        tqdm is not even imported: a refresh run by cron takes a few hundred milliseconds)."""
        if not (show and sys.stderr.isatty()):
            yield None
            return
        from tqdm import tqdm

        with tqdm(total=total or None, unit="period", desc=desc, file=sys.stderr) as bar:
            yield bar.update
