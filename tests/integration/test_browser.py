"""The student's flow in a real browser: sign in, upload, watch the status change, see the result.

Playwright drives Debian's chromium (``/usr/bin/chromium``, installed by ``make``); the site is
pytest-django's live server and grading is done by the real worker of the conftest.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from courses.models import Challenge
from tests.integration.conftest import Worker

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_it_takes_a_student_from_sign_in_to_a_graded_result(
    celery_worker: Worker,
    live_server: Any,
    tab: Page,
    keypoints: Challenge,
    student: User,
    demo_models: dict[str, Path],
) -> None:
    page = tab
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "student")
    page.fill("#id_password", "student")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.goto(f"{live_server.url}/challenges/{keypoints.slug}/")

    page.set_input_files("input[type=file]", str(demo_models["keypoints_pass"]))
    page.get_by_role("button", name="Upload and grade").click()

    # The result page first shows the pending status, then updates by itself.
    expect(page.locator("h1")).to_contain_text("Submission to")
    expect(page.locator(".badge.passed")).to_be_visible(timeout=120_000)
    expect(page.locator("dl.facts").first).to_contain_text("MSE")

    page.goto(f"{live_server.url}/challenges/{keypoints.slug}/leaderboard/")
    handle = student.enrollments.get().handle
    mine = page.locator("tr.mine")
    expect(mine).to_contain_text(handle)
    expect(mine).to_contain_text("(you)")
    # The histogram of best scores is drawn by the server and actually loads.
    histogram = page.locator("figure.histogram img")
    expect(histogram).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=histogram.element_handle()
    )


def test_the_result_page_shows_the_place_in_the_queue_live(
    tab: Page,
    live_server: Any,
    shared_dirs: dict[str, Path],
    keypoints: Challenge,
    student: User,
    demo_models: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No worker serves this test's own broker at first: the page says where the upload stands,
    follows the queue as it moves, and shows the result once a real worker has graded it."""
    from datetime import timedelta

    from django.utils import timezone

    from courses.models import Enrollment
    from submissions.models import Submission
    from submissions.services import submission_enqueue
    from tests.brokers import app_sending_to, filesystem_options
    from tests.integration.conftest import start_worker, stop_worker
    from tests.platform.conftest import make_submission

    folder = tmp_path / "broker"
    with app_sending_to(monkeypatch, "filesystem://", filesystem_options(folder)):
        other = User.objects.create_user("other", "other@example.com", "other")
        earlier = timezone.now() - timedelta(seconds=30)
        ahead = make_submission(
            Enrollment.objects.create(user=other, semester=keypoints.semester),
            keypoints,
            created_at=earlier,
        )
        mine = make_submission(
            Enrollment.objects.get(user=student),
            keypoints,
            content=demo_models["keypoints_pass"].read_bytes(),
        )
        submission_enqueue(mine)  # its message waits in this test's broker
        tab.goto(f"{live_server.url}/accounts/login/?next=/submissions/{mine.pk}/")
        tab.fill("#id_username", "student")
        tab.fill("#id_password", "student")
        tab.get_by_role("button", name="Sign in").click()
        place = tab.locator("[data-field=queue]")
        # "; no grading worker is running right now", or "about 60 s" when the session's
        # worker (serving another broker) beats: the place is what this test follows.
        expect(place).to_have_text(re.compile(r"^2nd in the queue[;,] "))

        Submission.objects.filter(pk=ahead.pk).update(status=Submission.Status.FAILED)
        expect(place).to_have_text(re.compile(r"^1st in the queue[;,] "))

        worker = start_worker(
            shared_dirs,
            hostname="browser@%h",
            env={"CELERY_BROKER_URL": "filesystem://", "CELERY_BROKER_DIR": str(folder)},
        )
        try:
            expect(tab.locator(".badge.passed")).to_be_visible(timeout=120_000)
        finally:
            stop_worker(worker)


def test_it_lets_a_student_select_an_upload_and_the_board_follows(
    live_server: Any, tab: Page, keypoints: Challenge, student: User
) -> None:
    import uuid
    from datetime import timedelta

    from django.core.files.base import ContentFile
    from django.utils import timezone

    from courses.models import Enrollment
    from submissions.models import Submission

    keypoints.scoring = Challenge.Scoring.SELECTED
    keypoints.save()
    rival = Enrollment.objects.create(
        user=User.objects.create_user("rival", "rival@example.com", "rival"),
        semester=keypoints.semester,
    )

    def graded(enrollment: Enrollment, score: float, minutes_ago: int) -> Submission:
        submission = Submission(
            id=uuid.uuid4(),
            enrollment=enrollment,
            challenge=keypoints,
            sha256="0" * 64,
            size=5,
            format="pt2",
            status=Submission.Status.GRADED,
            score=score,
            passed=score >= keypoints.threshold,
            metrics={"score": score, "mse": 1 / (2 * score)},
            created_at=timezone.now() - timedelta(minutes=minutes_ago),
        )
        submission.file.save("upload.bin", ContentFile(b"model"), save=False)
        submission.save(force_insert=True)
        return submission

    mine = student.enrollments.get()
    graded(mine, 300.0, 30)
    low = graded(mine, 50.0, 20)
    graded(rival, 120.0, 10)

    page = tab
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "student")
    page.fill("#id_password", "student")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    board = f"{live_server.url}/challenges/{keypoints.slug}/leaderboard/"
    page.goto(board)
    expect(page.locator("tr.mine td").first).to_have_text("1")
    expect(page.locator("tr.mine")).to_contain_text("300.00")

    page.goto(f"{live_server.url}/submissions/{low.pk}/")
    page.get_by_role("button", name="Select this upload").click()
    expect(page.get_by_role("button", name="Unselect")).to_be_visible()
    expect(page.locator(".badge.counted")).to_be_visible()

    page.goto(board)
    expect(page.locator("tr.mine td").first).to_have_text("2")
    expect(page.locator("tr.mine")).to_contain_text("50.00")
    expect(page.locator("tbody tr").first).to_contain_text(rival.handle)
