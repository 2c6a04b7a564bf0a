"""The fair queue through a real worker: a student with a pile of uploads holds nobody back,
their place says so, and re-grade attempts take their share of the worker while uploads wait.

The worker grades one job at a time (``--concurrency=1``), so the order in which uploads start
is the order the claim chose; first in, first out would start the pile's uploads first.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client

from courses.models import Challenge, Enrollment
from submissions.heartbeats import alive_workers
from submissions.models import ApiToken, GradingRun, RegradeBatch, Submission
from submissions.regrade import regrade_batch_start
from tests.integration.conftest import (
    PrivateBroker,
    Worker,
    start_worker,
    stop_worker,
    wait_for,
    wait_until_done,
)
from tests.platform.conftest import make_submission

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

#: uploads of the student with a pile
PILE = 6


def upload(api: Client, challenge: Challenge, model: Path) -> str:
    with model.open("rb") as fh:
        response = api.post(f"/api/challenges/{challenge.slug}/submissions/", {"file": fh})
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def api_for(user: User) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(user)}")


def other_student(keypoints: Challenge) -> User:
    user = User.objects.create_user("other", "other@example.com", "other")
    Enrollment.objects.create(user=user, semester=keypoints.semester)
    return user


def test_a_single_upload_starts_before_the_third_of_a_pile_and_is_next_in_line(
    celery_worker: Worker,
    keypoints: Challenge,
    student: User,
    quick_model: Path,
) -> None:
    wait_for(
        lambda: alive_workers().filter(name__startswith="integration@").exists(),
        celery_worker,
        "the worker's heartbeat",
    )
    pile_api, single_api = api_for(student), api_for(other_student(keypoints))
    model = quick_model
    pile = [upload(pile_api, keypoints, model) for _ in range(PILE)]
    # The pile's first upload runs; the others wait behind it.
    wait_for(
        lambda: Submission.objects.filter(pk__in=pile, status="running").exists(),
        celery_worker,
        "the pile's first grading",
    )

    single = upload(single_api, keypoints, model)
    place = single_api.get(f"/api/submissions/{single}/").json()

    # Right after a student with a pile waiting, another student's single upload is next.
    assert place["queue_position"] == 1, place
    assert isinstance(place["eta_seconds"], int) and place["eta_seconds"] > 0
    for pk in [*pile, single]:
        assert wait_until_done(pk, celery_worker).status == Submission.Status.GRADED
    rows = Submission.objects.filter(pk__in=[*pile, single])
    started = {str(pk): at for pk, at in rows.values_list("pk", "started_at")}
    order = sorted(started, key=lambda pk: started[pk])
    assert order.index(single) < order.index(pile[2]), order
    # Graded exactly once each.
    assert GradingRun.objects.filter(submission__in=[*pile, single]).count() == PILE + 1


def test_regrade_attempts_take_their_share_while_uploads_wait(
    shared_dirs: dict[str, Path],
    private_broker: PrivateBroker,
    keypoints: Challenge,
    student: User,
    quick_model: Path,
) -> None:
    """Everything is queued before the worker starts: two re-grade attempts, then two uploads
    of another student. With the default share (0.5) the worker alternates, uploads first."""
    model = quick_model.read_bytes()
    enrollment = student.enrollments.get()
    for _ in range(2):
        make_submission(
            enrollment, keypoints, content=model, status=Submission.Status.GRADED, score=1.0
        )
    staff = User.objects.create_superuser("staff", "staff@example.com", "staff")
    batch = regrade_batch_start(keypoints, staff, "grader upgraded")
    api = api_for(other_student(keypoints))
    uploads = [upload(api, keypoints, quick_model) for _ in range(2)]

    worker = start_worker(shared_dirs, hostname="share@%h", env=private_broker.env)
    try:
        for pk in uploads:
            assert wait_until_done(pk, worker).status == Submission.Status.GRADED
        wait_for(
            lambda: RegradeBatch.objects.get(pk=batch.pk).status != RegradeBatch.Status.RUNNING,
            worker,
            "the re-grade",
        )
    finally:
        stop_worker(worker)

    starts = [
        ("regrade" if run.batch_id else "upload", run.started_at)
        for run in GradingRun.objects.exclude(outcome=GradingRun.Outcome.QUEUED)
    ]
    order = [kind for kind, _at in sorted(starts, key=lambda start: start[1])]
    assert order == ["upload", "regrade", "upload", "regrade"], worker.log()
