"""Grade passback end to end: an LTI launch from the real platform process, an upload graded
by a real worker, and the score arriving at the platform's line item, posted by the passback
task a worker runs from the housekeeping queue (retried with backoff while the platform fails).

The browser test runs on the embedded default; the other one also in ``make test``'s second
pass, on PostgreSQL + Redis.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from courses.formatting import format_score
from courses.models import Challenge, Enrollment
from lti.models import Passback
from tests.integration.conftest import (
    PrivateBroker,
    Worker,
    start_worker,
    stop_worker,
)
from tests.lti.conftest import (  # noqa: F401
    graded_upload,
    launch,
    platform,
    register,
    signed_in_user_id,
)
from tests.lti.peer import PlatformPeer

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCORE_WITHIN_SECONDS = 60


def site_of(live_server: Any) -> str:
    # Platform and tool on 127.0.0.1: one site for the browser's cookies (see tests/lti).
    return str(live_server.url).replace("localhost", "127.0.0.1")


def scores_for(peer: PlatformPeer, sub: str, worker: Worker) -> list[dict[str, Any]]:
    deadline = time.monotonic() + SCORE_WITHIN_SECONDS
    while time.monotonic() < deadline:
        found = [s["score"] for s in peer.state()["scores"] if s["score"]["userId"] == sub]
        if found:
            return found
        time.sleep(0.3)
    pytest.fail(f"no score for {sub} arrived at the platform; worker log:\n{worker.log()}")


@pytest.mark.browser
def test_launch_upload_graded_and_the_score_arrives_at_the_lms(
    celery_worker: Worker,
    live_server: Any,
    tab: Page,
    platform: PlatformPeer,  # noqa: F811
    keypoints: Challenge,
    demo_models: dict[str, Path],
) -> None:
    site = site_of(live_server)
    register(platform, site)
    tab.goto(
        platform.launch_url(
            sub="e2e-1",
            email="e2e@example.org",
            roles=["Learner"],
            custom={"challenge": keypoints.slug},
            resource_link="link-e2e",
        )
    )
    expect(tab).to_have_url(f"{site}/challenges/{keypoints.slug}/")
    tab.set_input_files("input[type=file]", str(demo_models["keypoints_pass"]))
    tab.get_by_role("button", name="Upload and grade").click()
    expect(tab.locator(".badge.passed")).to_be_visible(timeout=120_000)

    [score] = scores_for(platform, "e2e-1", celery_worker)
    submission = Enrollment.objects.get(user__email="e2e@example.org").submissions.get()
    assert score["scoreGiven"] == 1 and score["scoreMaximum"] == 1
    assert score["comment"] == f"score {format_score(submission.score, 'number')}"
    assert (score["activityProgress"], score["gradingProgress"]) == ("Completed", "FullyGraded")
    [item] = platform.state()["line_items"]["course-1"]
    assert (item["tag"], item["resourceLinkId"]) == (keypoints.slug, "link-e2e")


def test_the_passback_task_retries_with_backoff_until_the_platform_takes_the_score(
    private_broker: PrivateBroker,
    shared_dirs: dict[str, Path],
    live_server: Any,
    platform: PlatformPeer,  # noqa: F811
    keypoints: Challenge,
) -> None:
    """The passback path alone (the grading is the browser test's): a recorded result, the task
    sent after commit to the housekeeping queue, a real worker posting the score, the platform
    failing twice, the retries with backoff, the score taken once."""
    worker = start_worker(
        shared_dirs,
        hostname="lti@%h",
        env={**private_broker.env, "LTI_PASSBACK_RETRY_SECONDS": "1"},
    )
    try:
        urls = register(platform, site_of(live_server))
        platform.configure(fail_scores=2)
        failed_before = platform.state()["failed_scores"]
        client = Client()
        answer = launch(
            client, platform, urls, sub="retry-1", email="retry@example.org",
            custom={"challenge": keypoints.slug},
        )  # fmt: skip
        assert answer.status_code == 302
        enrollment = Enrollment.objects.get(user_id=signed_in_user_id(client))
        started = time.monotonic()
        upload = graded_upload(enrollment, keypoints, 55.5)  # the worker's record, committed

        [score] = scores_for(platform, "retry-1", worker)
        waited = time.monotonic() - started
        assert score["scoreGiven"] == 0 and score["comment"] == "score 55.50"
        assert score["timestamp"] == upload.finished_at.isoformat()
        assert platform.state()["failed_scores"] - failed_before == 2
        assert waited >= 1 + 2, worker.log()  # the two backoff waits: 1 s, then 2 s
        passback = Passback.objects.get(enrollment=enrollment)
        assert passback.state == Passback.State.SENT and passback.attempts == 3
        assert passback.sent_payload == score
        # A message delivered again (or a second worker) sends nothing new.
        from lti.grades import push_score

        assert push_score(enrollment.pk, keypoints.pk).unchanged == 1
        time.sleep(1)
        assert (
            len([s for s in platform.state()["scores"] if s["score"]["userId"] == "retry-1"]) == 1
        )
    finally:
        stop_worker(worker)
