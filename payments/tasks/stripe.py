"""Celery tasks: stripe. Load by id, call a service, nothing else."""
