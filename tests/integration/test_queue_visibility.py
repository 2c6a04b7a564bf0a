"""The queue made visible, through the real worker: a student's place and estimate while a job
runs ahead, the worker on the staff health page, and the metrics Prometheus scrapes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from courses.models import Challenge
from submissions.heartbeats import alive_workers
from submissions.models import ApiToken
from tests.integration.conftest import Worker, wait_until_done

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_it_shows_place_eta_health_and_metrics_of_real_gradings(
    celery_worker: Worker,
    keypoints: Challenge,
    student: User,
    demo_models: dict[str, Path],
    settings,
) -> None:
    settings.METRICS_TOKEN = "scrape"
    # "ready." comes before the pool process has warmed its sandbox; it beats once it can grade.
    deadline = time.monotonic() + 60
    while not alive_workers().filter(name__startswith="integration@").exists():
        assert time.monotonic() < deadline, celery_worker.log()
        time.sleep(0.2)
    api = Client(HTTP_AUTHORIZATION=f"Token {ApiToken.issue(student)}")
    ids = []
    for _ in range(2):
        with demo_models["keypoints_pass"].open("rb") as fh:
            response = api.post(f"/api/challenges/{keypoints.slug}/submissions/", {"file": fh})
        assert response.status_code == 201
        ids.append(response.json()["id"])

    # The worker (one process) takes the first; the second waits its turn, with an estimate
    # because the worker beats its heartbeat.
    second = api.get(f"/api/submissions/{ids[1]}/").json()
    if second["status"] == "queued":
        assert second["queue_position"] in (1, 2)
        assert isinstance(second["eta_seconds"], int) and second["eta_seconds"] > 0
    for pk in ids:
        assert wait_until_done(pk, celery_worker).status == "graded"
    done = api.get(f"/api/submissions/{ids[1]}/").json()
    assert (done["queue_position"], done["eta_seconds"]) == (None, None)

    staff = User.objects.create_user("ops", "ops@example.com", "ops", is_staff=True)
    browser = Client()
    browser.force_login(staff)
    page = browser.get("/staff/health/", {"part": "body"}).content.decode()
    assert 'data-worker="integration@' in page
    assert "<td>sandbox</td>" in page and "badge passed" in page
    scraped = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape").content.decode()
    families = {f.name: f.samples for f in text_string_to_metric_families(scraped)}
    assert any(
        s.labels["worker"].startswith("integration@") and s.value == 1.0
        for s in families["leaderboard_worker_up"]
    )
    counts = [
        s.value
        for s in families["leaderboard_grading_seconds"]
        if s.name.endswith("_count") and s.labels["outcome"] == "graded"
    ]
    assert counts == [2.0]
