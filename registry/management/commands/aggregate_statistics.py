"""Recompute the national statistics synchronously; returns when every figure is current."""

import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

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
        with tqdm(
            total=total or None,
            unit="period",
            desc="full rebuild" if full else "stale periods",
            disable=no_progress,
            file=sys.stderr,
        ) as bar:
            if full:
                done = statistics_rebuild(progress=bar.update)
            else:
                done = statistics_refresh(stale=stale, progress=bar.update)
        self.stdout.write(self.style.SUCCESS(f"Statistics current: {done} periods recomputed."))
