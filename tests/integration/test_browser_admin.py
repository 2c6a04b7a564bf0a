"""A TA's re-grade in a real browser: pick a submission in the admin, confirm, watch it live.

The submission is a real upload graded by the conftest's worker; the re-grade attempt is graded
by that worker in the sandbox too, and the challenge's admin page follows it without a reload.
The attempt's message to the worker is held back (in this process: the live server is a thread
of it) until the page has been served showing the re-grade running, so that the page has to
update itself, whatever the speed of the grading.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from playwright.sync_api import Page, expect

from courses.models import Challenge
from submissions import doorbell
from submissions.models import GradingRun, RegradeBatch, Submission
from tests.integration.conftest import Worker, wait_until_done

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

GRADED_MS = 120_000


def graded_submission(
    student: User, challenge: Challenge, model: Path, worker: Worker
) -> Submission:
    """The student's real upload of ``model``, once the worker has graded it."""
    client = Client()
    client.force_login(student)
    with model.open("rb") as fh:
        response = client.post(reverse("challenge_detail", args=[challenge.slug]), {"file": fh})
    assert response.status_code == 302, response.content.decode()[:2000]
    done = wait_until_done(Submission.objects.get(enrollment__user=student).pk, worker)
    assert done.status == Submission.Status.GRADED, done.error
    return done


def test_a_ta_regrades_a_submission_and_follows_it_live(
    celery_worker: Worker,
    live_server: Any,
    tab: Page,
    keypoints: Challenge,
    student: User,
    demo_models: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    submission = graded_submission(student, keypoints, demo_models["keypoints_pass"], celery_worker)
    User.objects.create_superuser("ta", "ta@example.com", "ta")
    page = tab

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "ta")
    page.fill("#id_password", "ta")
    page.locator("input[type=submit]").click()
    expect(page.locator("#user-tools")).to_contain_text("Welcome, ta.")

    page.goto(f"{live_server.url}/admin/submissions/submission/")
    page.check(f'input[name=_selected_action][value="{submission.pk}"]')
    page.select_option("select[name=action]", "regrade_selected")
    page.get_by_role("button", name="Go", exact=True).click()

    # The confirmation: what would be re-graded, a reason and the dry-run choice.
    expect(page).to_have_title(re.compile(r"^Re-grade submissions"))
    preview = page.locator("#content table tbody tr")
    expect(preview).to_have_count(1)
    expect(preview.locator("td").nth(0)).to_have_text(keypoints.slug)
    expect(preview.locator("td").nth(2)).to_have_text("1")
    expect(page.locator("#id_dry_run")).not_to_be_checked()
    assert not RegradeBatch.objects.exists()  # nothing starts before it is confirmed
    page.fill("#id_reason", "browser test: grader fix")
    # The attempt goes to the worker only once the progress page below has been served
    # running (grading takes about two seconds: it could otherwise be served finished).
    send = doorbell.ring
    held: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(doorbell, "ring", lambda *args, **kwargs: held.append((args, kwargs)))
    page.get_by_role("button", name="Start re-grade").click()

    success = page.locator("ul.messagelist li.success")
    expect(success).to_contain_text("1 submission(s) queued for re-grading.")
    batch = RegradeBatch.objects.get()
    assert (batch.challenge_id, batch.dry_run, batch.total) == (keypoints.pk, False, 1)
    assert batch.reason == "browser test: grader fix"
    follow = success.get_by_role("link", name="Follow its progress")
    expect(follow).to_be_visible()

    follow.click()
    change = reverse("admin:courses_challenge_change", args=[keypoints.pk])
    expect(page).to_have_url(re.compile(re.escape(change) + "#regrades$"))
    row = page.locator(f'#regrades tr[data-batch="{batch.pk}"]')
    expect(row).to_contain_text("browser test: grader fix")
    progress = row.locator("[data-field=progress]")
    status = row.locator("[data-field=status_label]")
    cancel = row.locator("form[data-action=can_cancel]")
    publish = row.locator("form[data-action=can_publish]")
    # Served while the attempt is still held back: running, nothing graded yet.
    expect(row).to_have_attribute("data-running", "1")
    expect(status).to_have_text("Running")
    expect(progress).to_have_text("0 of 1 graded, 0 failure(s)")
    expect(cancel).to_be_visible()

    # Now let the worker have it; the row must follow without the page being reloaded.
    page.evaluate("window.__marker = 1")
    assert len(held) == 1, held
    for args, kwargs in held:
        send(*args, **kwargs)
    expect(progress).to_have_text("1 of 1 graded, 0 failure(s)", timeout=GRADED_MS)
    expect(status).to_have_text("Published", timeout=GRADED_MS)
    expect(row).to_have_attribute("data-running", "0")
    # Published by its last attempt: nothing left to publish or cancel.
    expect(publish).to_be_hidden()
    expect(cancel).to_be_hidden()
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    batch.refresh_from_db()
    assert batch.status == RegradeBatch.Status.PUBLISHED, celery_worker.log()

    # The submission's admin page lists the new attempt, tied to the batch.
    page.goto(f"{live_server.url}/admin/submissions/submission/{submission.pk}/change/")
    attempt = page.locator("#runs-group tr.form-row").filter(
        has_text=f"re-grade of {keypoints.slug} #{batch.pk}"
    )
    expect(attempt).to_have_count(1)
    expect(attempt.locator("td.field-outcome")).to_have_text("Graded")
    run = GradingRun.objects.get(submission=submission, batch__isnull=False)
    assert (run.batch_id, run.outcome) == (batch.pk, GradingRun.Outcome.GRADED)
