"""The fair queue without a worker: which waiting work the claim takes, the place it shows, the
re-grade share, and the coarse duration a student sees (the real worker: tests/integration/
test_fair_queue.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from courses.models import Enrollment
from submissions import heartbeats
from submissions.claim import claim_next
from submissions.models import GradingRun, RegradeBatch, Submission
from submissions.queue import coarse_seconds, fair_uploads, queue_place, regrade_turn
from submissions.results import Grading, Worker
from tests.platform.conftest import make_submission, make_user

WORKER = Worker("host", "cpu", "2", name="host:1")


def uploads(enrollment, challenge, n: int, *, first_seconds_ago: float = 100) -> list[Submission]:
    now = timezone.now()
    return [
        make_submission(
            enrollment, challenge, created_at=now - timedelta(seconds=first_seconds_ago - i)
        )
        for i in range(n)
    ]


@pytest.fixture
def other(other_student, semester) -> Enrollment:
    return Enrollment.objects.get(user=other_student, semester=semester)


@pytest.fixture
def third(semester) -> Enrollment:
    return Enrollment.objects.create(user=make_user("third"), semester=semester)


def claimed(work) -> Submission:
    assert isinstance(work, Grading), work
    return work.submission


def test_a_free_worker_takes_the_student_with_nothing_running(enrollment, other, challenge):
    pile = uploads(enrollment, challenge, 3, first_seconds_ago=100)
    (single,) = uploads(other, challenge, 1, first_seconds_ago=10)

    first = claimed(claim_next("cpu", WORKER))
    second = claimed(claim_next("cpu", WORKER))

    # The pile's oldest came first; then the other student's single upload, not the pile's 2nd.
    assert (first.pk, second.pk) == (pile[0].pk, single.pk)
    assert claimed(claim_next("cpu", WORKER)).pk == pile[1].pk
    assert claimed(claim_next("cpu", WORKER)).pk == pile[2].pk
    assert claim_next("cpu", WORKER) is None
    # Each claim opened the run of its attempt, exactly once.
    assert GradingRun.objects.filter(outcome=GradingRun.Outcome.RUNNING).count() == 4


def test_an_otherwise_idle_worker_takes_a_second_upload_of_the_same_student(enrollment, challenge):
    pile = uploads(enrollment, challenge, 2)

    assert claimed(claim_next("cpu", WORKER)).pk == pile[0].pk
    assert claimed(claim_next("cpu", WORKER)).pk == pile[1].pk


def test_fewer_graded_in_the_last_hour_comes_first(enrollment, other, challenge):
    recent = timezone.now() - timedelta(minutes=10)
    for _ in range(2):
        make_submission(
            enrollment, challenge, status=Submission.Status.GRADED, finished_at=recent, score=1.0
        )
    (busy,) = uploads(enrollment, challenge, 1, first_seconds_ago=100)
    (fresh,) = uploads(other, challenge, 1, first_seconds_ago=10)

    assert [s.pk for s in fair_uploads("cpu")] == [fresh.pk, busy.pk]


def test_the_cap_allows_more_running_per_student(settings, enrollment, other, third, challenge):
    settings.GRADER_MAX_RUNNING_PER_STUDENT = 2
    make_submission(enrollment, challenge, status=Submission.Status.RUNNING)
    (mine,) = uploads(enrollment, challenge, 1, first_seconds_ago=100)
    make_submission(other, challenge, status=Submission.Status.RUNNING)
    make_submission(other, challenge, status=Submission.Status.RUNNING)
    (theirs,) = uploads(other, challenge, 1, first_seconds_ago=50)

    # One running is under the cap of two; two running is at it: last while others wait.
    assert [s.pk for s in fair_uploads("cpu")] == [mine.pk, theirs.pk]


def test_it_claims_only_its_devices_queue(enrollment, other, challenge, semester):
    from tests.platform.conftest import make_challenge

    gpu = make_challenge(semester, slug="gpu", title="GPU", device="gpu")
    (on_gpu,) = uploads(enrollment, gpu, 1, first_seconds_ago=100)
    (on_cpu,) = uploads(other, challenge, 1, first_seconds_ago=10)

    assert claimed(claim_next("cpu", WORKER)).pk == on_cpu.pk
    assert claim_next("cpu", WORKER) is None
    assert Submission.objects.get(pk=on_gpu.pk).status == Submission.Status.QUEUED


def test_it_leaves_out_challenges_the_messages_limits_do_not_cover(enrollment, challenge):
    (upload,) = uploads(enrollment, challenge, 1)

    assert claim_next("cpu", WORKER, max_time_limit=challenge.time_limit_seconds - 1) is None
    taken = claimed(claim_next("cpu", WORKER, max_time_limit=challenge.time_limit_seconds))
    assert taken.pk == upload.pk


def test_a_single_upload_after_a_pile_of_five_waiting_is_next(enrollment, other, challenge):
    heartbeats.beat("w:1", host="w", device="cpu")
    # Six uploads of one student: the first is running, five wait.
    pile = uploads(enrollment, challenge, 6, first_seconds_ago=100)
    claimed(claim_next("cpu", WORKER))
    (single,) = uploads(other, challenge, 1, first_seconds_ago=10)

    assert queue_place(single).position == 1
    assert [queue_place(s).position for s in pile[1:]] == [2, 3, 4, 5, 6]
    assert "1st in the queue" in queue_place(single).text


def test_with_nothing_running_the_piles_oldest_goes_first_then_the_single(
    enrollment, other, challenge
):
    pile = uploads(enrollment, challenge, 5, first_seconds_ago=100)
    (single,) = uploads(other, challenge, 1, first_seconds_ago=10)

    assert queue_place(single).position == 2
    assert [queue_place(s).position for s in pile] == [1, 3, 4, 5, 6]


def regrade_runs(enrollment, challenge, n: int) -> list[GradingRun]:
    batch = RegradeBatch.objects.create(challenge=challenge, reason="test", total=n)
    runs = []
    for _ in range(n):
        done = make_submission(
            enrollment, challenge, status=Submission.Status.GRADED, score=1.0, attempts=1
        )
        runs.append(
            GradingRun.objects.create(
                submission=done, attempt=1, batch=batch, outcome=GradingRun.Outcome.QUEUED
            )
        )
    return runs


def test_regrades_take_the_configured_share_while_uploads_wait(
    settings, enrollment, other, challenge
):
    settings.GRADER_REGRADE_SHARE = 0.5
    regrade_runs(enrollment, challenge, 4)
    uploads(other, challenge, 4)

    kinds = ["regrade" if isinstance(claim_next("cpu", WORKER), GradingRun) else "upload"]
    for _ in range(5):
        kinds.append("regrade" if isinstance(claim_next("cpu", WORKER), GradingRun) else "upload")

    # Uploads first, then one of each while both wait.
    assert kinds == ["upload", "regrade", "upload", "regrade", "upload", "regrade"]


def test_regrades_wait_while_uploads_do_with_a_share_of_zero(
    settings, enrollment, other, challenge
):
    settings.GRADER_REGRADE_SHARE = 0
    runs = regrade_runs(enrollment, challenge, 2)
    waiting = uploads(other, challenge, 2)

    taken = [claim_next("cpu", WORKER) for _ in range(4)]

    assert [claimed(w).pk for w in taken[:2]] == [s.pk for s in waiting]
    assert [w.pk for w in taken[2:]] == [r.pk for r in runs]
    assert not regrade_turn("cpu")


def test_the_place_counts_the_regrades_the_share_lets_in(settings, enrollment, other, challenge):
    settings.GRADER_REGRADE_SHARE = 0.5
    regrade_runs(enrollment, challenge, 5)
    waiting = uploads(other, challenge, 3)

    # Two uploads ahead of the third, and as many re-grade attempts beside them.
    assert queue_place(waiting[2]).position == 5
    settings.GRADER_REGRADE_SHARE = 0
    assert queue_place(waiting[2]).position == 3


def test_the_estimate_reads_the_recent_throughput_under_load(enrollment, other, challenge):
    """Gradings slowed by a rush (20 s each) while one worker finished 30 in the last five
    minutes (one per 10 s): the wait is read from the throughput, not from the slow mean."""
    heartbeats.beat("w:1", host="w", device="cpu")
    now = timezone.now()
    for i in range(30):
        done = make_submission(enrollment, challenge, status=Submission.Status.GRADED, score=1.0)
        # All within the last 2.5 minutes: well inside the five-minute window, however slowly
        # this test runs.
        end = now - timedelta(seconds=5 * i + 1)
        GradingRun.objects.create(
            submission=done,
            attempt=1,
            worker_name="w:1",
            started_at=end - timedelta(seconds=20),
            finished_at=end,
            outcome=GradingRun.Outcome.GRADED,
        )
    waiting = uploads(other, challenge, 10)

    # Nine ahead at one per 10 s, then its own (the mean duration, 20 s).
    assert queue_place(waiting[9]).eta_seconds == 9 * 10 + 20


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, None), (0.4, 0), (3.49, 3), (12.5, 12), (99.6, 100), (123.4, 120), (4567.0, 4600)],
)
def test_a_student_sees_a_coarse_duration(seconds, shown):
    assert coarse_seconds(seconds) == shown


def test_the_sweeps_resending_keeps_an_uploads_place(enrollment, other, challenge):
    from submissions import lifecycle

    (first,) = uploads(enrollment, challenge, 1, first_seconds_ago=100)
    (later,) = uploads(other, challenge, 1, first_seconds_ago=10)
    # The sweep sends the first's message again (it waited too long): a new ``queued_at``.
    assert lifecycle.resend(first, timezone.now())

    assert [s.pk for s in fair_uploads("cpu")] == [first.pk, later.pk]
    assert queue_place(first).position == 1
    assert claimed(claim_next("cpu", WORKER)).pk == first.pk
