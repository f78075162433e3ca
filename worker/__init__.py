"""Celery worker: thin tasks that take job ids, call ablation_core, and store the results."""
