"""A real upload to a graded leaderboard row, through a real Celery worker and the sandbox.

Runs on whichever stack the settings name (see conftest): both stacks run in ``make test``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse

from courses.models import Challenge
from submissions.models import ApiToken, GradingRun, Submission
from tests.integration.conftest import Worker, wait_until_done

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def upload(client: Client, challenge: Challenge, path: Path) -> Any:
    with path.open("rb") as fh:
        return client.post(reverse("challenge_detail", args=[challenge.slug]), {"file": fh})


def test_it_grades_an_upload_and_ranks_it_on_the_leaderboard(
    celery_worker: Worker, keypoints: Challenge, student: User, demo_models: dict[str, Path]
) -> None:
    client = Client()
    client.force_login(student)

    response = upload(client, keypoints, demo_models["keypoints_pass"])

    assert response.status_code == 302, response.content.decode()[:2000]
    submission = Submission.objects.get(enrollment__user=student)
    assert response["Location"] == reverse("submission_detail", args=[submission.pk])
    done = wait_until_done(submission.pk, celery_worker)
    assert done.status == Submission.Status.GRADED, done.error
    assert done.passed is True
    assert done.score is not None and done.score >= 100
    run = GradingRun.objects.get(submission=done)
    assert run.outcome == GradingRun.Outcome.GRADED
    assert run.runner == "sandbox"
    assert len(run.dataset_hash) == 64

    page = client.get(reverse("submission_detail", args=[done.pk])).content.decode()
    assert '<span class="badge passed">Passed</span>' in page
    board = Client().get(reverse("challenge_leaderboard", args=[keypoints.slug]))
    handle = student.enrollments.get().handle
    assert handle in board.content.decode()
    rows = Client().get(reverse("api_leaderboard", args=[keypoints.slug])).json()["rows"]
    assert [(r["rank"], r["handle"], r["passed"]) for r in rows] == [(1, handle, True)]
    assert rows[0]["score"] == pytest.approx(done.score)


def test_it_shows_a_failing_model_as_not_passed(
    celery_worker: Worker, keypoints: Challenge, student: User, demo_models: dict[str, Path]
) -> None:
    client = Client()
    client.force_login(student)

    upload(client, keypoints, demo_models["keypoints_fail"])

    done = wait_until_done(Submission.objects.get().pk, celery_worker)
    assert done.status == Submission.Status.GRADED
    assert done.passed is False
    assert done.score is not None and done.score < 100
    page = client.get(reverse("submission_detail", args=[done.pk])).content.decode()
    assert '<span class="badge failed">Not passed</span>' in page
    assert '<span class="badge passed">' not in page


def test_it_rejects_a_garbage_file_with_a_clear_error_and_queues_nothing(
    celery_worker: Worker, keypoints: Challenge, student: User, tmp_path: Path
) -> None:
    garbage = tmp_path / "model.pt2"
    garbage.write_bytes(b"definitely not a model\n" * 100)
    client = Client()
    client.force_login(student)

    response = upload(client, keypoints, garbage)

    assert response.status_code == 200
    assert "not a model file the grader recognises" in response.content.decode()
    assert not Submission.objects.exists()


def test_it_grades_through_the_json_api_with_a_token(
    celery_worker: Worker, segmentation: Challenge, student: User, demo_models: dict[str, Path]
) -> None:
    token = ApiToken.issue(student)
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    with demo_models["segmentation_pass"].open("rb") as fh:
        response = api.post(f"/api/challenges/{segmentation.slug}/submissions/", {"file": fh})
    assert response.status_code == 201, response.content.decode()
    created = response.json()
    assert created["status"] == "queued"

    wait_until_done(created["id"], celery_worker)
    result = api.get(f"/api/submissions/{created['id']}/").json()

    assert result["status"] == "graded", result
    assert result["passed"] is True
    assert result["score"] >= 0.64
    assert len(result["metrics"]["per_class_iou"]) == 23


def test_it_grades_a_classification_model_and_shows_its_charts(
    celery_worker: Worker, classification: Challenge, student: User, demo_models: dict[str, Path]
) -> None:
    """The third kind through the same path: upload, worker, sandbox, result page, board."""
    client = Client()
    client.force_login(student)
    with demo_models["classification_pass"].open("rb") as fh:
        response = client.post(
            reverse("challenge_detail", args=[classification.slug]), {"file": fh}
        )
    assert response.status_code == 302, response.content.decode()
    submission = Submission.objects.get()

    done = wait_until_done(submission.pk, celery_worker)

    assert done.status == Submission.Status.GRADED, done.error
    assert done.passed is True and done.score is not None and done.score >= 0.5
    per_class = done.metrics["per_class_accuracy"]
    assert len(per_class) == 10 and len(done.metrics["confusion"]) == 10
    page = client.get(reverse("submission_detail", args=[done.pk])).content.decode()
    assert '<span class="badge passed">Passed</span>' in page
    for chart in ("per-class", "confusion"):
        url = reverse("submission_chart", args=[done.pk, chart])
        assert url in page
        svg = client.get(url)
        assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    assert ">confusion matrix on the hidden test set<".lower() in svg.content.decode().lower()
    board = Client().get(reverse("challenge_leaderboard", args=[classification.slug])).content
    assert f"{done.score * 100:.2f} %" in board.decode()


def test_it_runs_on_the_stack_the_environment_names(celery_worker: Worker) -> None:
    """Guards the second run of ``make test``: PostgreSQL + Redis must really be in use."""
    wants_postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    assert (connection.vendor == "postgresql") is wants_postgres
    wants_redis = os.environ.get("CELERY_BROKER_URL", "").startswith("redis")
    assert settings.CELERY_BROKER_URL.startswith("redis://") is wants_redis
    assert celery_worker.proc.poll() is None
