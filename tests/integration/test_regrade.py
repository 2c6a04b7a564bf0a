"""A challenge re-grade through the admin, graded by the real worker in the sandbox."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from courses.models import Challenge
from submissions.models import GradingRun, RegradeBatch, Submission
from tests.integration.conftest import GRADED_WITHIN_SECONDS, Worker, wait_until_done

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_it_regrades_a_challenge_and_publishes_the_same_score(
    celery_worker: Worker, keypoints: Challenge, student: User, demo_models: dict[str, Path]
) -> None:
    client = Client()
    client.force_login(student)
    with demo_models["keypoints_pass"].open("rb") as fh:
        client.post(reverse("challenge_detail", args=[keypoints.slug]), {"file": fh})
    done = wait_until_done(Submission.objects.get().pk, celery_worker)
    staff = User.objects.create_superuser("staff", "staff@example.com", "staff")
    client.force_login(staff)

    response = client.post(
        "/admin/courses/challenge/",
        {
            "action": "regrade_challenge",
            "_selected_action": [str(keypoints.pk)],
            "post": "yes",
            "reason": "grader upgraded",
        },
        follow=True,
    )

    assert "1 submission(s) queued for re-grading." in response.content.decode()
    batch = RegradeBatch.objects.get()
    deadline = time.monotonic() + GRADED_WITHIN_SECONDS
    while batch.status == RegradeBatch.Status.RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
        batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.PUBLISHED, celery_worker.log()
    run = batch.runs.get()
    assert (run.outcome, run.runner) == (GradingRun.Outcome.GRADED, "sandbox")
    regraded = Submission.objects.get()
    assert regraded.score == done.score
    assert regraded.finished_at is not None and done.finished_at is not None
    assert regraded.finished_at > done.finished_at
    assert "No changes." in client.get(f"/staff/regrades/{batch.pk}/").content.decode()
