"""My submissions, a result page and the live-status endpoint: who sees what."""

from __future__ import annotations

import math

from django.utils import timezone

from courses.models import Enrollment
from submissions.models import GradingRun, Submission
from tests.platform.conftest import graded, make_challenge, make_submission


def run_for(submission: Submission, **fields) -> GradingRun:
    return GradingRun.objects.create(
        submission=submission,
        attempt=1,
        outcome=GradingRun.Outcome.GRADED,
        finished_at=timezone.now(),
        log="model stderr: secret test input 42",
        **fields,
    )


# --- my submissions ---------------------------------------------------------------------------


def test_it_lists_only_the_students_own_submissions(
    client, student, enrollment, other_student, challenge
):
    mine = make_submission(enrollment, challenge)
    theirs = make_submission(Enrollment.objects.get(user=other_student), challenge)
    client.force_login(student)

    page = client.get("/submissions/").content.decode()

    assert str(mine.pk) in page
    assert str(theirs.pk) not in page
    assert "updates by itself" in page


def test_it_explains_an_empty_list(client, student):
    client.force_login(student)

    assert "You have not uploaded anything yet" in client.get("/submissions/").content.decode()


def test_it_pages_the_list(client, student, enrollment, challenge):
    for _ in range(25):
        make_submission(enrollment, challenge)
    client.force_login(student)

    first = client.get("/submissions/")
    second = client.get("/submissions/?page=2")

    assert len(first.context["page"].object_list) == 20
    assert len(second.context["page"].object_list) == 5


def test_it_lists_in_a_constant_number_of_queries(
    client, student, enrollment, challenge, django_assert_num_queries
):
    for _ in range(5):
        make_submission(enrollment, challenge)
    client.force_login(student)

    # session, user, count for the paginator, the page of submissions with their challenge,
    # semester and course
    with django_assert_num_queries(4):
        client.get("/submissions/")


# --- the result page --------------------------------------------------------------------------


def test_it_shows_the_owner_score_mse_and_verdict(client, student, enrollment, challenge):
    submission = graded(enrollment, challenge, 125.0)
    run_for(submission)
    client.force_login(student)

    page = client.get(f"/submissions/{submission.pk}/").content.decode()

    assert "Passed" in page
    assert "125.00" in page
    assert "0.004000" in page  # MSE = 1 / (2 * 125)
    # Logs may echo hidden test inputs: never for students.
    assert "secret test input" not in page
    assert "Grading runs" not in page


def test_it_shows_an_infinite_score_as_infinity(client, student, enrollment, challenge):
    submission = graded(enrollment, challenge, math.inf)
    client.force_login(student)

    assert "∞" in client.get(f"/submissions/{submission.pk}/").content.decode()


def test_it_shows_the_error_of_a_failed_submission(client, student, enrollment, challenge):
    submission = make_submission(
        enrollment,
        challenge,
        status=Submission.Status.FAILED,
        error="output shape (2, 15) for a batch of 2 images",
    )
    client.force_login(student)

    page = client.get(f"/submissions/{submission.pk}/").content.decode()

    assert "Failed" in page
    assert "output shape (2, 15)" in page


def test_it_polls_while_grading_runs(client, student, enrollment, challenge):
    submission = make_submission(enrollment, challenge)
    client.force_login(student)

    page = client.get(f"/submissions/{submission.pk}/").content.decode()

    assert "live.js" in page
    assert 'data-pending="1"' in page


def test_it_is_404_for_another_students_submission(client, other_student, enrollment, challenge):
    submission = make_submission(enrollment, challenge)
    client.force_login(other_student)

    assert client.get(f"/submissions/{submission.pk}/").status_code == 404


def test_it_shows_staff_every_submission_with_its_runs(client, staff, enrollment, challenge):
    submission = graded(enrollment, challenge, 125.0)
    run_for(submission, worker_host="gpu-1", torch_version="2.14.1+cpu")
    client.force_login(staff)

    page = client.get(f"/submissions/{submission.pk}/").content.decode()

    assert "Grading runs" in page
    assert "gpu-1" in page
    assert "2.14.1+cpu" in page
    assert "secret test input 42" in page


def test_it_shows_a_ta_the_submissions_of_their_semester(client, ta, enrollment, challenge):
    submission = graded(enrollment, challenge, 125.0)
    run_for(submission)
    client.force_login(ta)

    response = client.get(f"/submissions/{submission.pk}/")

    assert response.status_code == 200
    assert "Grading runs" in response.content.decode()


# --- live status ------------------------------------------------------------------------------


def test_it_reports_live_status_of_own_submissions_only(
    client, student, enrollment, other_student, challenge
):
    mine = graded(enrollment, challenge, 125.0)
    pending = make_submission(enrollment, challenge, status=Submission.Status.RUNNING)
    theirs = make_submission(Enrollment.objects.get(user=other_student), challenge)
    client.force_login(student)

    response = client.get(
        "/submissions/live/", {"id": [str(mine.pk), str(pending.pk), str(theirs.pk)]}
    )

    states = {s["id"]: s for s in response.json()["submissions"]}
    assert set(states) == {str(mine.pk), str(pending.pk)}
    assert states[str(mine.pk)] | {"id": None} == {
        "id": None,
        "status": "graded",
        "status_label": "Graded",
        "pending": False,
        "score": "125.00",
        "mse": "0.004000",
        "passed": True,
        "error": "",
        "queue": "",
    }
    assert states[str(pending.pk)]["pending"] is True


def test_it_answers_400_for_a_malformed_id(client, student):
    client.force_login(student)

    assert client.get("/submissions/live/", {"id": "nope"}).status_code == 400


def test_it_shows_a_segmentation_result_whose_metrics_lack_extra_figures(
    client, student, enrollment, semester
):
    # Seeded or older results may carry only the ranking figure.
    segmentation = make_challenge(semester, task="segmentation", slug="seg", threshold=0.64)
    submission = make_submission(
        enrollment,
        segmentation,
        status=Submission.Status.GRADED,
        score=0.7,
        passed=True,
        metrics={"accuracy": 0.7},
    )
    client.force_login(student)

    page = client.get(f"/submissions/{submission.pk}/")

    assert page.status_code == 200
    assert "70.00 %" in page.content.decode()
