"""Benchmarks for issue 8: ingestion, statistics, incentives, admin pages and freshness.

Run one with ``.venv/bin/python -m bench.<name>`` or all with ``make bench``; see bench/README.md.
"""
