"""A graded upload lands on the right page of a paginated board, through a real Celery worker
and the sandbox; ``make test`` runs it on both stacks (SQLite, then PostgreSQL + Redis)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from courses.models import Challenge, Enrollment
from leaderboard.views import public as views
from submissions.models import Submission
from tests.integration.conftest import Worker, wait_until_done

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def rival(challenge: Challenge, number: int, score: float) -> Enrollment:
    user = User.objects.create_user(f"rival{number}", f"rival{number}@example.com", "x")
    enrollment = Enrollment.objects.create(user=user, semester=challenge.semester)
    created = timezone.now() - timedelta(hours=1)
    Submission.objects.create(
        enrollment=enrollment,
        challenge=challenge,
        file=f"submissions/rival-{number}.bin",
        sha256="0" * 64,
        size=1,
        format="pt2",
        status=Submission.Status.GRADED,
        score=score,
        passed=score >= challenge.threshold,
        metrics={"score": score},
        created_at=created,
        queued_at=created,
    )
    return enrollment


def test_a_graded_upload_appears_on_its_page(
    celery_worker: Worker,
    keypoints: Challenge,
    student: User,
    demo_models: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(views, "ROWS_PER_PAGE", 2)
    # Four students far above any model and two far below: the upload ranks fifth, the first
    # row of page 3.
    for number, score in enumerate([1e9, 1e9 - 1, 1e9 - 2, 1e9 - 3, 0.5, 0.25]):
        rival(keypoints, number, score)
    client = Client()
    client.force_login(student)
    with demo_models["keypoints_pass"].open("rb") as fh:
        client.post(reverse("challenge_detail", args=[keypoints.slug]), {"file": fh})

    done = wait_until_done(Submission.objects.get(enrollment__user=student).pk, celery_worker)

    assert done.status == Submission.Status.GRADED, done.error
    url = reverse("challenge_leaderboard", args=[keypoints.slug])
    handle = student.enrollments.get().handle
    first = client.get(url).content.decode()
    assert 'href="?page=3#me">Jump to my row' in first
    assert handle not in first
    mine = client.get(url + "?page=mine")
    assert mine.context["page"].number == 3
    row = mine.content.decode()[mine.content.decode().index('id="me"') :]
    assert handle in row[: row.index("</tr>")]
    assert '<td class="num">5</td>' in row[: row.index("</tr>")]
    board = Client().get(reverse("api_leaderboard", args=[keypoints.slug]), {"page": 1}).json()
    assert (board["count"], board["pages"]) == (7, 1)  # the API's pages are 100 rows
    assert [row["handle"] for row in board["rows"]].index(handle) == 4
    assert board["rows"][4]["rank"] == 5
    assert board["rows"][4]["score"] == pytest.approx(done.score)
