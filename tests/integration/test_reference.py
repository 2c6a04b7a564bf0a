"""The reference-model check through the real worker process and its runner, on the hidden
data: queued like an upload (a task by name after commit), recorded on the challenge."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.core.files.base import ContentFile

from courses.models import Challenge
from submissions.reference import reference_check_start, reference_warnings
from tests.integration.conftest import GRADED_WITHIN_SECONDS, Worker

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_it_checks_a_challenge_with_its_reference_model(
    celery_worker: Worker, keypoints: Challenge, demo_models: dict[str, Path]
) -> None:
    keypoints.reference_model.save(
        "ref.pt2", ContentFile(demo_models["keypoints_pass"].read_bytes())
    )

    assert reference_check_start(keypoints)

    deadline = time.monotonic() + GRADED_WITHIN_SECONDS
    while time.monotonic() < deadline:
        keypoints.refresh_from_db()
        if keypoints.reference_check.get("status") != "queued":
            break
        time.sleep(0.2)
    check = keypoints.reference_check
    assert check.get("status") == "graded", f"{check}\n{celery_worker.log()}"
    assert check["passed"] is True
    assert float(check["score"]) >= keypoints.threshold
    assert len(check["dataset_hash"]) == 64
    assert reference_warnings(keypoints) == []
