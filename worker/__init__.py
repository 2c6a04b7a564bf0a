"""Celery app and tasks: ``celery -A worker worker`` grades, ``celery -A worker beat`` sweeps."""

from worker.celery import app

__all__ = ["app"]
