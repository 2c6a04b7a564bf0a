"""The Celery app, configured from Django's settings (the ``CELERY_`` names), as in Celery's
Django guide. Tasks live in ``worker.tasks``; only workers import it (``include``), so the web
process, which only sends messages by task name, never loads the grader's runtime."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("worker", include=["worker.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")

#: task names, shared by senders that must not import ``worker.tasks``
GRADE_SUBMISSION = "worker.tasks.grade_submission"
SWEEP_STUCK = "worker.tasks.sweep_stuck"
REGRADE_ATTEMPT = "worker.tasks.regrade_attempt"
