"""The Celery app, configured from Django's settings (the ``CELERY_`` names), as in Celery's
Django guide; ``config/__init__.py`` imports it so that it exists whenever Django does.

Tasks live in ``worker.tasks`` and ``lti.tasks`` (grade passback, roster sync), which only
workers import (``include``). Everything else sends work by task name (``submissions.doorbell``,
``lti.grades``) through ``celery.current_app``, which is this app in every thread
(``set_default``), so the web process never imports the grader's runtime and no package below
``worker`` depends on it. ``celery -A worker`` finds this app through
``worker/__init__.py``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("leaderboard", include=["worker.tasks", "lti.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
# The current app of every thread, not only of the one that imported this module: request
# threads of the web server send through ``celery.current_app``.
app.set_default()
