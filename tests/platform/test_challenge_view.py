"""The challenge page: who sees it, and uploading through its form."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.utils import timezone

from submissions.doorbell import GRADE_SUBMISSION
from submissions.models import Submission
from tests.platform.conftest import garbage_upload, make_challenge, make_submission


def url(challenge) -> str:
    return f"/challenges/{challenge.slug}/"


def test_it_sends_anonymous_visitors_to_sign_in(client, challenge):
    response = client.get(url(challenge))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_it_shows_the_form_deadline_and_handle_to_a_student(client, student, enrollment, challenge):
    client.force_login(student)

    response = client.get(url(challenge))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert enrollment.handle in page
    assert "3 of 3 uploads left" in page
    assert "No uploads yet" in page


def test_it_is_404_for_someone_not_enrolled(client, outsider, challenge):
    client.force_login(outsider)

    assert client.get(url(challenge)).status_code == 404


def test_it_lets_staff_look_without_uploading(client, staff, challenge):
    client.force_login(staff)

    response = client.get(url(challenge))

    assert response.status_code == 200
    assert "not enrolled in this semester" in response.content.decode()
    assert 'type="file"' not in response.content.decode()


def test_it_stores_an_upload_under_an_opaque_name_and_queues_it_after_commit(
    client, student, challenge, tiny_models, sent, django_capture_on_commit_callbacks
):
    client.force_login(student)
    content = tiny_models.zeros_bytes()

    with (
        django_capture_on_commit_callbacks(execute=True),
        tiny_models.zeros.open("rb") as fh,
    ):
        response = client.post(url(challenge), {"file": fh})

    submission = Submission.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/submissions/{submission.pk}/"
    assert submission.file.name == f"submissions/{submission.pk}.bin"
    assert submission.original_name == "zeros.pt2"
    assert submission.sha256 == hashlib.sha256(content).hexdigest()
    assert submission.size == len(content)
    assert submission.status == Submission.Status.QUEUED
    with submission.file.open("rb") as stored:
        assert stored.read() == content
    assert [(m.name, m.args) for m in sent] == [(GRADE_SUBMISSION, [str(submission.pk)])]


def test_it_queues_nothing_before_the_transaction_commits(
    client, student, challenge, tiny_models, sent
):
    client.force_login(student)

    with tiny_models.zeros.open("rb") as fh:
        client.post(url(challenge), {"file": fh})

    # The test's transaction never commits, so the doorbell never rang.
    assert Submission.objects.count() == 1
    assert sent == []


def test_it_shows_a_clear_error_for_a_garbage_file(client, student, challenge):
    client.force_login(student)

    response = client.post(url(challenge), {"file": garbage_upload()})

    assert response.status_code == 200
    assert "not a model file the grader recognises" in response.content.decode()
    assert not Submission.objects.exists()


def test_it_says_when_the_quota_is_used_up(client, student, enrollment, challenge, tiny_models):
    for _ in range(challenge.daily_quota):
        make_submission(enrollment, challenge)
    client.force_login(student)

    with tiny_models.zeros.open("rb") as fh:
        response = client.post(url(challenge), {"file": fh})

    assert "You have used all 3 uploads of the last 24 hours" in response.content.decode()
    assert Submission.objects.count() == challenge.daily_quota


def test_it_hides_the_form_after_the_deadline(client, student, challenge):
    challenge.deadline = timezone.now() - timedelta(minutes=1)
    challenge.save()
    client.force_login(student)

    page = client.get(url(challenge)).content.decode()

    assert "The deadline has passed" in page
    assert 'type="file"' not in page


def test_it_shows_the_deadline_in_the_course_timezone(client, student, challenge):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    challenge.deadline = datetime(2027, 7, 1, 23, 59, 59, tzinfo=ZoneInfo("Europe/Berlin"))
    challenge.save()
    client.force_login(student)

    page = client.get(url(challenge)).content.decode()

    assert "Thu 01 Jul 2027, 23:59:59 CEST" in page
    assert 'datetime="2027-07-01T23:59:59+02:00"' in page


def test_it_refuses_an_oversized_upload_before_reading_it(client, student, challenge, semester):
    # Another challenge takes larger files: the site-wide 413 lets the body through, and the
    # form's own check of this challenge's limit refuses it, still unread.
    make_challenge(semester, slug="big", max_file_mb=challenge.max_file_mb * 4)
    client.force_login(student)
    too_big = str(challenge.max_file_bytes * 2)

    response = client.post(url(challenge), {"file": garbage_upload()}, CONTENT_LENGTH=too_big)

    assert response.status_code == 302
    assert "accepts files up to 2 MB" in client.get(url(challenge)).content.decode()
    assert not Submission.objects.exists()


def test_it_shows_the_page_in_a_constant_number_of_queries(
    client, student, enrollment, challenge, django_assert_num_queries
):
    for _ in range(5):
        make_submission(enrollment, challenge)
    client.force_login(student)

    # session, user, the challenge with semester and course, the enrolment, the quota count,
    # the quota's next free slot, the recent uploads with their challenge, the student's
    # extension (their own deadline and quota; late days cost nothing without a budget)
    with django_assert_num_queries(8):
        client.get(url(challenge))
