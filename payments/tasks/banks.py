"""Celery tasks: banks. Load by id, call a service, nothing else."""
