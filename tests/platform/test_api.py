"""The JSON API: every endpoint and every error status."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from courses.models import Enrollment
from submissions.doorbell import GRADE_SUBMISSION
from submissions.models import Submission
from tests.platform.conftest import garbage_upload, graded, make_challenge, make_submission


def auth(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Token {token}"}


def post_model(client, slug, token, path):
    with path.open("rb") as fh:
        return client.post(f"/api/challenges/{slug}/submissions/", {"file": fh}, **auth(token))


# --- authentication ---------------------------------------------------------------------------


def test_it_asks_for_a_token(client, challenge):
    response = client.get("/api/challenges/")

    assert response.status_code == 401
    assert response.json()["code"] == "no_token"
    assert response["WWW-Authenticate"].startswith("Token")


def test_it_refuses_a_wrong_token(client, token):
    response = client.get("/api/challenges/", **auth("nope"))

    assert response.status_code == 401
    assert response.json()["code"] == "bad_token"


def test_it_refuses_another_scheme(client, token):
    response = client.get("/api/challenges/", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert response.status_code == 401


def test_it_refuses_a_token_of_a_deactivated_user(client, token, student):
    student.is_active = False
    student.save()

    assert client.get("/api/challenges/", **auth(token)).status_code == 401


def test_it_answers_a_wrong_method_with_405(client, token, challenge):
    response = client.get(f"/api/challenges/{challenge.slug}/submissions/", **auth(token))

    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_it_checks_csrf_for_session_requests(student, challenge, tiny_models):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(student)

    with tiny_models.zeros.open("rb") as fh:
        response = browser.post(f"/api/challenges/{challenge.slug}/submissions/", {"file": fh})

    assert response.status_code == 403
    assert response.json()["code"] == "csrf"


def test_it_needs_no_csrf_token_with_an_api_token(token, challenge, tiny_models):
    browser = Client(enforce_csrf_checks=True)

    response = post_model(browser, challenge.slug, token, tiny_models.zeros)

    assert response.status_code == 201


# --- GET /api/challenges/ ---------------------------------------------------------------------


def test_it_lists_the_challenges_of_the_users_semesters(client, token, challenge, earlier_semester):
    make_challenge(earlier_semester, slug="old-keypoints")

    response = client.get("/api/challenges/", **auth(token))

    assert response.status_code == 200
    assert response.json() == {
        "challenges": [
            {
                "slug": challenge.slug,
                "title": "Facial keypoints",
                "task": "keypoints",
                "course": "i2dl",
                "semester": "ws2026",
                "deadline": challenge.deadline.isoformat(),
                "threshold": 1.0,
                "open": True,
                "scoring": "best",
                "max_selected": 2,
                "public_fraction": 0.0,
                "results_revealed": False,
                "final_results_at": None,
            }
        ]
    }


def test_it_lists_every_challenge_to_staff(client, staff, challenge, earlier_semester):
    from submissions.models import ApiToken

    make_challenge(earlier_semester, slug="old-keypoints")

    response = client.get("/api/challenges/", **auth(ApiToken.issue(staff)))

    assert {c["slug"]: c["open"] for c in response.json()["challenges"]} == {
        challenge.slug: True,
        "old-keypoints": False,
    }


# --- POST /api/challenges/<slug>/submissions/ -------------------------------------------------


def test_it_creates_a_submission_and_queues_it_after_commit(
    client, token, challenge, tiny_models, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = post_model(client, challenge.slug, token, tiny_models.zeros)

    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "status", "url"}
    assert body["status"] == "queued"
    assert body["url"] == f"http://testserver/api/submissions/{body['id']}/"
    assert response["Location"] == body["url"]
    submission = Submission.objects.get(pk=body["id"])
    assert submission.format == "pt2"
    assert [(m.name, m.args) for m in sent] == [(GRADE_SUBMISSION, [body["id"]])]
    assert sent[0].options["time_limit"] > sent[0].options["soft_time_limit"]


def test_it_answers_400_for_a_bad_file(client, token, challenge):
    response = client.post(
        f"/api/challenges/{challenge.slug}/submissions/",
        {"file": garbage_upload()},
        **auth(token),
    )

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_format"
    assert "not a model file" in response.json()["error"]
    assert not Submission.objects.exists()


def test_it_answers_400_without_a_file(client, token, challenge):
    response = client.post(f"/api/challenges/{challenge.slug}/submissions/", {}, **auth(token))

    assert response.status_code == 400
    assert response.json()["code"] == "no_file"


def test_it_answers_403_to_someone_not_enrolled(client, outsider, challenge, tiny_models):
    from submissions.models import ApiToken

    response = post_model(client, challenge.slug, ApiToken.issue(outsider), tiny_models.zeros)

    assert response.status_code == 403


def test_it_answers_404_for_an_unknown_challenge(client, token, tiny_models, challenge):
    assert post_model(client, "nope", token, tiny_models.zeros).status_code == 404


def test_it_answers_409_after_the_deadline(client, token, challenge, tiny_models):
    challenge.deadline = timezone.now() - timedelta(seconds=1)
    challenge.save()

    response = post_model(client, challenge.slug, token, tiny_models.zeros)

    assert response.status_code == 409
    assert response.json()["code"] == "deadline"


def test_it_answers_409_in_a_closed_semester(client, token, challenge, tiny_models):
    challenge.semester.closed = True
    challenge.semester.save()

    assert post_model(client, challenge.slug, token, tiny_models.zeros).status_code == 409


def test_it_answers_429_over_the_quota(client, token, enrollment, challenge, tiny_models):
    for _ in range(challenge.daily_quota):
        make_submission(enrollment, challenge)

    response = post_model(client, challenge.slug, token, tiny_models.zeros)

    assert response.status_code == 429
    assert response.json()["code"] == "quota"


# --- GET /api/submissions/<id>/ ---------------------------------------------------------------


def test_it_shows_a_submission_to_its_owner(client, token, enrollment, challenge):
    submission = graded(enrollment, challenge, math.inf)

    response = client.get(f"/api/submissions/{submission.pk}/", **auth(token))

    assert response.status_code == 200
    assert response.json() == {
        "id": str(submission.pk),
        "status": "graded",
        "score": "Infinity",
        "passed": True,
        "public_score": "Infinity",
        "private_score": None,
        "selected": False,
        "counted": True,
        "metrics": {"score": "Infinity", "mse": 0.0},
        "error": "",
        "queue_position": None,
        "eta_seconds": None,
    }


HOST_FACTS = {"dataset_hash": "ab" * 32, "runner": "sandbox", "grader_version": "1.2.3"}


def test_it_shows_the_owner_the_fields_their_result_page_shows(
    client, token, enrollment, challenge
):
    submission = graded(enrollment, challenge, 2.0)
    submission.metrics = {**submission.metrics, **HOST_FACTS}
    submission.save()

    metrics = client.get(f"/api/submissions/{submission.pk}/", **auth(token)).json()["metrics"]

    assert not set(HOST_FACTS) & set(metrics)
    assert metrics["mse"] == 0.25


def test_it_shows_course_staff_the_host_facts(client, ta, enrollment, challenge):
    from submissions.models import ApiToken

    submission = graded(enrollment, challenge, 2.0)
    submission.metrics = {**submission.metrics, **HOST_FACTS}
    submission.save()

    response = client.get(f"/api/submissions/{submission.pk}/", **auth(ApiToken.issue(ta)))

    assert HOST_FACTS.items() <= response.json()["metrics"].items()


def test_it_hides_a_submission_from_other_students(client, other_student, enrollment, challenge):
    from submissions.models import ApiToken

    submission = make_submission(enrollment, challenge)

    response = client.get(
        f"/api/submissions/{submission.pk}/", **auth(ApiToken.issue(other_student))
    )

    assert response.status_code == 404


def test_it_shows_any_submission_to_staff(client, staff, enrollment, challenge):
    from submissions.models import ApiToken

    submission = make_submission(enrollment, challenge)

    response = client.get(f"/api/submissions/{submission.pk}/", **auth(ApiToken.issue(staff)))

    assert response.status_code == 200
    assert response.json()["status"] == "queued"


def test_it_answers_404_for_an_unknown_submission(client, token):
    url = "/api/submissions/00000000-0000-0000-0000-000000000000/"

    assert client.get(url, **auth(token)).status_code == 404


# --- GET /api/challenges/<slug>/leaderboard/ --------------------------------------------------


def test_it_serves_the_leaderboard_without_a_token(client, enrollment, other_student, challenge):
    other = Enrollment.objects.get(user=other_student)
    mine = graded(enrollment, challenge, 120.0)
    graded(other, challenge, 0.5)
    theirs = graded(other, challenge, 300.0, minutes_ago=30)

    response = client.get(f"/api/challenges/{challenge.slug}/leaderboard/")

    assert response.status_code == 200
    assert response.json() == {
        "count": 2,
        "page": 1,
        "pages": 1,
        "per_page": 100,
        "next": None,
        "previous": None,
        "my_page": None,
        "rows": [
            {
                "rank": 1,
                "handle": other.handle,
                "score": 300.0,
                "mse": 1 / 600,
                "passed": True,
                "submissions": 2,
                "submitted_at": theirs.created_at.isoformat(),
                "public_score": None,
                "moved": None,
                "baseline": False,
            },
            {
                "rank": 2,
                "handle": enrollment.handle,
                "score": 120.0,
                "mse": 1 / 240,
                "passed": True,
                "submissions": 1,
                "submitted_at": mine.created_at.isoformat(),
                "public_score": None,
                "moved": None,
                "baseline": False,
            },
        ],
    }


def test_it_answers_404_for_the_leaderboard_of_an_unknown_challenge(client, db):
    assert client.get("/api/challenges/nope/leaderboard/").status_code == 404


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_it_only_reads_the_leaderboard(client, challenge, method):
    response = getattr(client, method)(f"/api/challenges/{challenge.slug}/leaderboard/")

    assert response.status_code == 405


def test_it_answers_400_for_an_oversized_upload(client, token, challenge, semester):
    # Another challenge takes larger files: the site-wide 413 lets the body through, and the
    # API's own check of this challenge's limit refuses it, still unread.
    make_challenge(semester, slug="big", max_file_mb=challenge.max_file_mb * 4)

    response = client.post(
        f"/api/challenges/{challenge.slug}/submissions/",
        {"file": garbage_upload()},
        CONTENT_LENGTH=str(challenge.max_file_bytes * 2),
        **auth(token),
    )

    assert response.status_code == 400
    assert response.json()["code"] == "file_too_large"
