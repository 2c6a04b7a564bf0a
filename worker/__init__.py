"""Celery workers: the grading and re-grade tasks, the sweep, and the demo's process runner.

``celery -A worker worker`` finds the project's Celery app here (it lives in ``config.celery``).
"""

from config.celery import app

__all__ = ["app"]
