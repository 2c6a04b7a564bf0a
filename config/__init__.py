"""The Django project. Importing it loads the Celery app, so ``send_task`` from the web process
uses the configured broker (as in Celery's Django guide)."""

from worker import app as celery_app

__all__ = ["celery_app"]
