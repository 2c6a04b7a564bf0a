"""The names the web side sends LTI tasks by, and beat's entries, are the tasks a worker has."""

from __future__ import annotations

from django.conf import settings

from config.celery import app
from lti import grades, tasks


def test_the_task_names_sent_and_scheduled_are_the_workers_tasks() -> None:
    assert tasks.push_score.name == grades.PUSH_SCORE
    assert tasks.push_challenge.name == grades.PUSH_CHALLENGE
    assert "lti.tasks" in app.conf.include
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        if entry["task"].startswith("lti."):
            assert entry["task"] in app.tasks
            assert entry["options"]["queue"] == settings.HOUSEKEEPING_QUEUE
