"""The staff health page: workers with their heartbeats, the queue per challenge, failures of
the last hour; for site staff and holders of the grade-book permission only."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from submissions import heartbeats
from submissions.models import GradingRun, Submission
from tests.platform.conftest import make_submission, make_user


def test_it_is_for_staff_and_gradebook_readers_only(db, staff, student):
    ta = make_user("ta")
    ta.user_permissions.add(Permission.objects.get(codename="view_gradebook"))
    browser = Client()

    assert browser.get("/staff/health/").status_code == 302  # to the login page
    browser.force_login(student)
    assert browser.get("/staff/health/").status_code == 404
    browser.force_login(ta)
    assert browser.get("/staff/health/").status_code == 200
    browser.force_login(staff)
    assert browser.get("/staff/health/").status_code == 200


def test_it_shows_workers_queues_and_failures(
    staff, enrollment, challenge, django_assert_num_queries
):
    heartbeats.beat(
        "alive@host:1", host="alive@host", device="cpu", runner="sandbox", job="submission x"
    )
    heartbeats.beat("dead@host:2", host="dead@host", device="cuda:0")
    heartbeats.stopped("dead@host:2")
    waiting = make_submission(
        enrollment, challenge, created_at=timezone.now() - timedelta(seconds=100)
    )
    make_submission(enrollment, challenge)
    for code in ("timeout", "timeout", "lost"):
        GradingRun.objects.create(
            submission=waiting,
            attempt=1,
            worker_name="alive@host:1",
            finished_at=timezone.now(),
            outcome=GradingRun.Outcome.REJECTED,
            error_code=code,
        )
    browser = Client()
    browser.force_login(staff)

    # session, user, workers, jobs, queues, failures, alerts, failed LTI grade passbacks
    with django_assert_num_queries(8):
        page = browser.get("/staff/health/", {"part": "body"}).content.decode()

    assert 'data-worker="alive@host:1"' in page and "submission x" in page
    assert "sandbox" in page and "cuda:0" in page
    assert page.count("badge passed") == 1 and page.count("badge failed") == 1
    assert f'data-challenge="{challenge.slug}"><td>{challenge.slug}</td><td class="num">2<' in page
    assert '<td>timeout</td><td class="num">2</td>' in page
    assert Submission.objects.filter(status="queued").count() == 2


def test_the_full_page_refreshes_its_body(staff):
    browser = Client()
    browser.force_login(staff)

    page = browser.get("/staff/health/").content.decode()

    assert 'data-refresh="?part=body"' in page and "health.js" in page
