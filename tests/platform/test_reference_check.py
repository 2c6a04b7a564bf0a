"""Checking a challenge with the staff's reference model: the admin action queues a task by
name, the worker's task grades the model on the hidden data (a plain child process here, as in
the other task tests) and records it, and the admin warns once data, threshold or limits move."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from submissions.doorbell import CHECK_REFERENCE
from submissions.models import GradingRun
from submissions.reference import reference_warnings
from tests.platform.conftest import graded
from worker.tasks import check_reference

# Each test starts its grading runners anew (the settings they read change per test).
pytestmark = pytest.mark.usefixtures("fresh_runners")


@pytest.fixture
def with_reference(challenge, tiny_models):
    challenge.reference_model.save("ref.pt2", ContentFile(tiny_models.zeros_bytes()))
    return challenge


def admin_action(client, challenge, action):
    return client.post(
        reverse("admin:courses_challenge_changelist"),
        {"action": action, "_selected_action": [challenge.pk]},
    )


def test_it_queues_a_check_from_the_admin(
    client, staff, with_reference, sent, django_capture_on_commit_callbacks
):
    client.force_login(staff)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_action(client, with_reference, "check_reference")
    assert response.status_code == 302, response.content.decode()[-3000:]

    assert [(m.name, m.args) for m in sent] == [(CHECK_REFERENCE, [with_reference.pk])]
    with_reference.refresh_from_db()
    assert with_reference.reference_check["status"] == "queued"


def test_it_grades_the_reference_model_and_shows_it(
    client, staff, student, with_reference, expected_zero_mse
):
    check_reference.run(with_reference.pk)

    with_reference.refresh_from_db()
    check = with_reference.reference_check
    assert check["status"] == "graded"
    assert check["score"] == pytest.approx(1 / (2 * expected_zero_mse), rel=1e-6)
    assert check["passed"] is True
    assert len(check["dataset_hash"]) == 64
    assert reference_warnings(with_reference) == []
    client.force_login(student)
    page = client.get(reverse("challenge_detail", args=[with_reference.slug])).content.decode()
    assert f"scores {check['score']:.2f} and passes" in page
    client.force_login(staff)
    admin = client.get(reverse("admin:courses_challenge_change", args=[with_reference.pk]))
    assert "passes (checked" in admin.content.decode()


def test_it_warns_when_threshold_limits_or_data_change(client, staff, with_reference, enrollment):
    check_reference.run(with_reference.pk)
    with_reference.refresh_from_db()

    with_reference.threshold = 1e9
    with_reference.max_params = 10
    with_reference.save()
    assert reference_warnings(with_reference) == [
        "Changed since the last successful reference check: max_params, threshold."
    ]

    with_reference.threshold, with_reference.max_params = 1.0, 5_000_000
    with_reference.save()
    submission = graded(enrollment, with_reference, 3.0)
    GradingRun.objects.create(submission=submission, attempt=1, dataset_hash="f" * 64)
    assert reference_warnings(with_reference) == [
        "The hidden test data changed since the last successful reference check."
    ]
    client.force_login(staff)
    admin = client.get(reverse("admin:courses_challenge_change", args=[with_reference.pk]))
    assert "The hidden test data changed" in admin.content.decode()


def test_it_records_a_reference_model_that_fails(with_reference, tiny_models):
    with_reference.reference_model.save(
        "bad.pt2", ContentFile(tiny_models.wrong_shape.read_bytes())
    )

    check_reference.run(with_reference.pk)

    with_reference.refresh_from_db()
    assert with_reference.reference_check["status"] == "failed"
    assert "the shape the challenge needs" in with_reference.reference_check["error"]
    assert reference_warnings(with_reference) == ["The reference model has not passed a check yet."]


def test_it_counts_only_a_passing_check_as_successful(with_reference):
    with_reference.threshold = 1e9
    with_reference.save()

    check_reference.run(with_reference.pk)

    with_reference.refresh_from_db()
    assert with_reference.reference_check["status"] == "graded"
    assert with_reference.reference_check["passed"] is False
    assert reference_warnings(with_reference) == [
        "The reference model has not passed a check yet.",
    ]
