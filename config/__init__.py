"""The Django project: settings, URLs, WSGI, and the Celery app (loaded with Django, as in
Celery's Django guide, so that ``celery.current_app`` is always this project's)."""

from config.celery import app as celery_app

__all__ = ["celery_app"]
