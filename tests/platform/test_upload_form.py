"""The upload form: size, format, deadline (in the course's timezone) and the daily quota."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from submissions.forms import UploadForm
from submissions.models import Submission
from tests.platform.conftest import garbage_upload, make_submission, model_upload

BERLIN = ZoneInfo("Europe/Berlin")


def form_for(enrollment, challenge, upload, now=None) -> UploadForm:
    return UploadForm({}, {"file": upload}, challenge=challenge, enrollment=enrollment, now=now)


def codes(form: UploadForm) -> set[str]:
    return {e.code for errors in form.errors.as_data().values() for e in errors}


def test_it_accepts_an_exported_model_and_tells_its_format(enrollment, challenge, tiny_models):
    form = form_for(enrollment, challenge, model_upload(tiny_models.zeros))

    assert form.is_valid(), form.errors
    assert form.format == "pt2"


def test_it_rejects_a_file_over_the_size_limit(enrollment, challenge, tiny_models):
    challenge.max_file_mb = 0  # any file is too large

    form = form_for(enrollment, challenge, model_upload(tiny_models.zeros))

    assert not form.is_valid()
    assert codes(form) == {"file_too_large"}
    assert form.api_status() == 400


def test_it_rejects_a_file_that_is_no_model_whatever_its_name(enrollment, challenge):
    form = form_for(enrollment, challenge, garbage_upload("model.pt2"))

    assert not form.is_valid()
    assert codes(form) == {"unknown_format"}
    assert "not a model file" in form.errors["file"][0]


def test_it_rejects_a_format_the_challenge_does_not_accept(enrollment, challenge, tiny_models):
    challenge.allowed_formats = ["onnx"]

    form = form_for(enrollment, challenge, model_upload(tiny_models.zeros))

    assert codes(form) == {"format_not_allowed"}


def test_it_rejects_an_empty_file(enrollment, challenge):
    form = form_for(enrollment, challenge, SimpleUploadedFile("model.pt2", b""))

    assert not form.is_valid()


# --- the deadline: 23:59:59 in Berlin, stored in UTC ------------------------------------------


@pytest.fixture
def berlin_deadline(challenge):
    # A winter date: Berlin is UTC+1, so the deadline is 22:59:59 UTC.
    challenge.deadline = datetime(2027, 1, 15, 23, 59, 59, tzinfo=BERLIN)
    challenge.save()
    challenge.refresh_from_db()
    return challenge


def test_it_stores_the_deadline_in_utc(berlin_deadline):
    assert berlin_deadline.deadline == datetime(2027, 1, 15, 22, 59, 59, tzinfo=ZoneInfo("UTC"))


def test_it_accepts_an_upload_just_before_the_deadline(enrollment, berlin_deadline, tiny_models):
    just_before = berlin_deadline.deadline - timedelta(microseconds=1)

    form = form_for(enrollment, berlin_deadline, model_upload(tiny_models.zeros), now=just_before)

    assert form.is_valid(), form.errors


def test_it_refuses_an_upload_exactly_at_the_deadline(enrollment, berlin_deadline, tiny_models):
    # "A submission counts if its upload finished before the deadline": at it is too late.
    at = datetime(2027, 1, 15, 23, 59, 59, tzinfo=BERLIN)

    form = form_for(enrollment, berlin_deadline, model_upload(tiny_models.zeros), now=at)

    assert codes(form) == {"deadline"}
    assert form.api_status() == 409
    assert "Fri 15 Jan 2027, 23:59:59 CET" in form.non_field_errors()[0]


def test_it_refuses_uploads_in_a_closed_semester(enrollment, challenge, tiny_models):
    challenge.semester.closed = True
    challenge.semester.save()

    form = form_for(enrollment, challenge, model_upload(tiny_models.zeros))

    assert codes(form) == {"closed"}
    assert form.api_status() == 409


# --- the quota: uploads in the last 24 hours, platform failures excluded ----------------------


def test_it_accepts_the_last_upload_of_the_quota(enrollment, challenge, tiny_models):
    for _ in range(challenge.daily_quota - 1):
        make_submission(enrollment, challenge)

    assert form_for(enrollment, challenge, model_upload(tiny_models.zeros)).is_valid()


def test_it_refuses_an_upload_over_the_quota(enrollment, challenge, tiny_models):
    for _ in range(challenge.daily_quota):
        make_submission(enrollment, challenge)

    form = form_for(enrollment, challenge, model_upload(tiny_models.zeros))

    assert codes(form) == {"quota"}
    assert form.api_status() == 429


def test_it_frees_a_slot_24_hours_after_an_upload(enrollment, challenge, tiny_models):
    now = timezone.now()
    make_submission(enrollment, challenge, created_at=now - timedelta(hours=24))
    for _ in range(challenge.daily_quota - 1):
        make_submission(enrollment, challenge, created_at=now - timedelta(hours=1))

    assert form_for(enrollment, challenge, model_upload(tiny_models.zeros), now=now).is_valid()
    slightly_earlier = now - timedelta(seconds=1)
    assert not form_for(
        enrollment, challenge, model_upload(tiny_models.zeros), now=slightly_earlier
    ).is_valid()


def test_it_does_not_count_uploads_that_failed_for_a_platform_reason(
    enrollment, challenge, tiny_models
):
    for _ in range(challenge.daily_quota):
        make_submission(
            enrollment, challenge, status=Submission.Status.FAILED, counts_for_quota=False
        )

    assert form_for(enrollment, challenge, model_upload(tiny_models.zeros)).is_valid()


def test_it_counts_uploads_the_model_failed_itself(enrollment, challenge, tiny_models):
    for _ in range(challenge.daily_quota):
        make_submission(enrollment, challenge, status=Submission.Status.FAILED, error="shape")

    assert codes(form_for(enrollment, challenge, model_upload(tiny_models.zeros))) == {"quota"}


def test_it_counts_the_quota_per_challenge(enrollment, challenge, semester, tiny_models):
    from tests.platform.conftest import make_challenge

    other = make_challenge(semester, slug="another")
    for _ in range(challenge.daily_quota):
        make_submission(enrollment, other)

    assert form_for(enrollment, challenge, model_upload(tiny_models.zeros)).is_valid()


def test_a_failed_upload_leaves_no_file_behind(
    client, student, enrollment, challenge, tiny_models, settings, monkeypatch
):
    from submissions import services

    def broker_library_bug(submission):
        raise RuntimeError("broken after the file was stored")

    monkeypatch.setattr(services, "submission_enqueue", broker_library_bug)
    client.force_login(student)
    client.raise_request_exception = False

    response = client.post(
        f"/challenges/{challenge.slug}/", {"file": model_upload(tiny_models.zeros)}
    )

    assert response.status_code == 500
    assert not Submission.objects.exists()
    stored = Path(settings.MEDIA_ROOT) / "submissions"
    assert not stored.exists() or list(stored.iterdir()) == []
