"""Celery tasks: incentives. Load by id, call a service, nothing else."""
