"""Where a queued submission stands: its place across every challenge the workers serve, and an
estimate from the challenge's recent gradings and the live workers."""

from __future__ import annotations

from datetime import timedelta

from django.test import Client
from django.urls import reverse
from django.utils import timezone

from submissions import heartbeats
from submissions.models import GradingRun, Submission
from submissions.queue import DEFAULT_GRADING_SECONDS, QueuePlace, ordinal, queue_place
from tests.platform.conftest import make_challenge, make_submission
from tests.platform.test_api import auth


def queued_at(enrollment, challenge, seconds_ago: float) -> Submission:
    when = timezone.now() - timedelta(seconds=seconds_ago)
    return make_submission(enrollment, challenge, created_at=when)


def finished_run(submission: Submission, seconds: float) -> None:
    end = timezone.now() - timedelta(minutes=5)
    GradingRun.objects.create(
        submission=submission,
        attempt=1,
        started_at=end - timedelta(seconds=seconds),
        finished_at=end,
        outcome=GradingRun.Outcome.GRADED,
    )


def test_it_counts_the_queue_across_challenges_in_sending_order(enrollment, challenge, semester):
    other = make_challenge(semester, slug="other", title="Other")
    first = queued_at(enrollment, other, 30)
    second = queued_at(enrollment, challenge, 20)
    third = queued_at(enrollment, challenge, 10)

    assert [queue_place(s).position for s in (first, second, third)] == [1, 2, 3]


def test_it_counts_only_the_queue_of_the_challenges_device(enrollment, challenge, semester):
    gpu = make_challenge(semester, slug="gpu", title="On a GPU", device="gpu")
    gpu_first = queued_at(enrollment, gpu, 30)
    cpu_later = queued_at(enrollment, challenge, 20)
    gpu_later = queued_at(enrollment, gpu, 10)
    heartbeats.beat("cpu:1", host="h", device="cpu")

    assert [queue_place(s).position for s in (gpu_first, cpu_later, gpu_later)] == [1, 1, 2]
    # A CPU worker does not serve the GPU queue: no estimate for it, one for the CPU queue.
    assert queue_place(gpu_first).eta_seconds is None
    assert queue_place(cpu_later).eta_seconds is not None


def test_it_has_no_place_unless_queued(enrollment, challenge):
    running = make_submission(enrollment, challenge, status=Submission.Status.RUNNING)
    graded = make_submission(enrollment, challenge, status=Submission.Status.GRADED)

    assert queue_place(running) == QueuePlace() == queue_place(graded)


def test_it_gives_no_estimate_while_no_worker_is_alive(enrollment, challenge):
    heartbeats.beat("gone:1", host="gone", device="cpu")
    heartbeats.stopped("gone:1")
    submission = queued_at(enrollment, challenge, 5)

    place = queue_place(submission)

    assert place == QueuePlace(1, None)
    assert place.text == "1st in the queue; no grading worker is running right now"


def test_it_estimates_from_recent_gradings_and_live_workers(enrollment, challenge):
    for seconds in (8.0, 12.0):  # 10 s on average
        finished_run(make_submission(enrollment, challenge, status="graded"), seconds)
    for n in range(3):
        queued_at(enrollment, challenge, 30 - n)
    mine = queued_at(enrollment, challenge, 1)  # 4th
    heartbeats.beat("w:1", host="w", device="cpu")

    assert queue_place(mine) == QueuePlace(4, 40)  # three ahead, then its own, one worker
    heartbeats.beat("w:2", host="w", device="cpu")
    assert queue_place(mine) == QueuePlace(4, 25)  # two workers share the three ahead
    assert queue_place(mine).text == "4th in the queue, about 25 s"


def test_it_guesses_before_any_grading_of_the_challenge(enrollment, challenge):
    heartbeats.beat("w:1", host="w", device="cpu")

    assert queue_place(queued_at(enrollment, challenge, 1)).eta_seconds == DEFAULT_GRADING_SECONDS


def test_ordinals_read_as_english():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"
    ]  # fmt: skip


def test_the_api_carries_position_and_eta_while_queued(client, token, enrollment, challenge):
    heartbeats.beat("w:1", host="w", device="cpu")
    queued_at(enrollment, challenge, 10)
    mine = queued_at(enrollment, challenge, 1)

    body = client.get(f"/api/submissions/{mine.pk}/", **auth(token)).json()

    assert (body["queue_position"], body["eta_seconds"]) == (2, 2 * int(DEFAULT_GRADING_SECONDS))
    Submission.objects.filter(pk=mine.pk).update(status=Submission.Status.RUNNING)
    body = client.get(f"/api/submissions/{mine.pk}/", **auth(token)).json()
    assert (body["queue_position"], body["eta_seconds"]) == (None, None)


def test_the_result_page_and_its_poller_show_the_place(student, enrollment, challenge):
    heartbeats.beat("w:1", host="w", device="cpu")
    queued_at(enrollment, challenge, 10)
    queued_at(enrollment, challenge, 9)
    mine = queued_at(enrollment, challenge, 1)
    browser = Client()
    browser.force_login(student)

    page = browser.get(reverse("submission_detail", args=[mine.pk])).content.decode()
    live = browser.get(reverse("submission_live"), {"id": str(mine.pk)}).json()

    assert 'data-field="queue">3rd in the queue, about 90 s<' in page
    assert live["submissions"][0]["queue"] == "3rd in the queue, about 90 s"
