"""Each student's maintained standing stays equal to what their submissions say, through every
path that changes a submission, and the board read from standings ranks exactly as a ranking of
all uploads would. Also the migration that fills standings for existing data."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from courses.models import Enrollment
from leaderboard.boards import leaderboard_compute
from submissions import lifecycle
from submissions.models import Standing, Submission
from submissions.standings import standing_changed, standing_refresh, standings_check
from tests.platform.conftest import graded, make_submission, make_user


def ranking_of_every_upload(challenge) -> list[tuple[str, float, object, int]]:
    """The ranking rules applied directly to all submissions, in Python."""
    best: dict[int, Submission] = {}
    uploads: dict[int, int] = {}
    for s in Submission.objects.filter(challenge=challenge).select_related("enrollment"):
        if s.counts_for_quota:
            uploads[s.enrollment_id] = uploads.get(s.enrollment_id, 0) + 1
        if s.enrollment.role != Enrollment.Role.STUDENT:
            continue
        if s.status != Submission.Status.GRADED or s.score is None or math.isnan(s.score):
            continue
        key = (-s.score, s.created_at, str(s.pk))
        mine = best.get(s.enrollment_id)
        if mine is None or key < (-mine.score, mine.created_at, str(mine.pk)):  # type: ignore[operator]
            best[s.enrollment_id] = s
    ordered = sorted(best.values(), key=lambda s: (-s.score, s.created_at, str(s.pk)))  # type: ignore[operator]
    return [
        (s.enrollment.handle, s.score, s.pk, uploads.get(s.enrollment_id, 0))  # type: ignore[misc]
        for s in ordered
    ]


def board(challenge) -> list[tuple[str, float, object, int]]:
    return [
        (row.handle, row.score, row.submission_id, row.submissions)
        for row in leaderboard_compute(challenge).rows
    ]


def test_standings_follow_every_kind_of_change(challenge, semester):
    rng = random.Random(4)
    people = [
        Enrollment.objects.create(user=make_user(f"s{i}"), semester=semester) for i in range(12)
    ]
    ta = Enrollment.objects.create(
        user=make_user("ta1"), semester=semester, role=Enrollment.Role.TA
    )
    now = timezone.now()
    for i, who in enumerate([*people, ta]):
        for _ in range(rng.randint(1, 5)):
            score = rng.choice([rng.uniform(0, 300), 100.0, math.inf, 0.0])
            graded(who, challenge, score, minutes_ago=rng.uniform(1, 500))
        if i % 3 == 0:
            make_submission(who, challenge, status=Submission.Status.FAILED, error="bad file")
    assert board(challenge) == ranking_of_every_upload(challenge)

    # A worker records a result through the conditional update: a first result ranks at once.
    newcomer = Enrollment.objects.create(user=make_user("late"), semester=semester)
    queued = make_submission(newcomer, challenge, created_at=now - timedelta(minutes=1))
    claimed = lifecycle.claim(str(queued.pk))
    assert claimed is not None
    assert lifecycle.finish(claimed, score=1e9, passed=True, metrics={"score": 1e9}, now=now)
    # A platform failure given up: no longer counts as an upload.
    lost = make_submission(people[1], challenge)
    claimed = lifecycle.claim(str(lost.pk))
    assert claimed is not None
    assert lifecycle.give_up(claimed, now)
    # Staff delete someone's best submission, and edit another's score, in the admin (ORM).
    best_of_2 = Standing.objects.get(enrollment=people[2], challenge=challenge).best
    assert best_of_2 is not None
    best_of_2.delete()
    edited = Submission.objects.filter(enrollment=people[3], status="graded").first()
    assert edited is not None
    edited.score = -1.0
    edited.save()
    # A student who becomes a TA leaves the board; their standing stays for the grade book.
    Enrollment.objects.filter(pk=people[4].pk).update(role=Enrollment.Role.TA)

    assert standings_check(challenge) == []
    assert board(challenge) == ranking_of_every_upload(challenge)
    assert (newcomer.handle, 1e9, queued.pk, 1) in board(challenge)


def test_the_command_finds_and_fixes_drift(enrollment, challenge):
    submission = graded(enrollment, challenge, 150.0)
    # An UPDATE that bypasses the services leaves the standing behind.
    Submission.objects.filter(pk=submission.pk).update(score=10.0)
    out = StringIO()

    with pytest.raises(CommandError, match="1 standing"):
        call_command("standings", stdout=out)
    with pytest.raises(CommandError, match="1 standing"):
        call_command("standings", "--check", stdout=out)  # as the README says it
    call_command("standings", "--fix", stdout=out)
    call_command("standings", "--check", "--challenge", challenge.slug, stdout=out)

    assert f"{challenge.slug}: 1 standing(s) differ" in out.getvalue()
    assert Standing.objects.get().score == 10.0


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_standings_for_existing_submissions(enrollment, challenge):
    newer = graded(enrollment, challenge, 150.0, minutes_ago=5)
    graded(enrollment, challenge, 150.0, minutes_ago=1)  # same score, uploaded later
    graded(enrollment, challenge, 20.0)
    Standing.objects.all().delete()
    executor = MigrationExecutor(connection)
    executor.migrate([("submissions", "0005_regrade_publish_cancel")])
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    try:
        executor.migrate(executor.loader.graph.leaf_nodes())
    finally:
        executor.loader.build_graph()

    standing = Standing.objects.get()
    assert (standing.best_id, standing.score, standing.uploads) == (newer.pk, 150.0, 3)
    assert standings_check(challenge) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_results_of_one_student_recorded_at_once_leave_the_right_best(enrollment, challenge):
    """Worker A records the better result and is slow to commit; worker B records the worse one
    meanwhile. Were the submissions read before the standing's row is locked, B would read them
    before A commits and write its own as the best, after A."""
    assert connection.vendor == "postgresql", "run with DATABASE_URL=postgres://… (make test)"
    better, worse = (make_submission(enrollment, challenge) for _ in range(2))
    a_refreshed = threading.Event()
    b_pid: list[int] = []
    errors: list[BaseException] = []

    def record(submission: Submission, score: float, before_commit: Callable[[], None]) -> None:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pid = cursor.fetchone()[0]
            if submission == worse:
                b_pid.append(pid)
            with transaction.atomic():
                Submission.objects.filter(pk=submission.pk).update(
                    status=Submission.Status.GRADED, score=score, passed=True
                )
                standing_refresh(enrollment.pk, challenge.pk)
                before_commit()
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)
        finally:
            connections.close_all()

    def a_waits_for_b() -> None:
        """Commit only once B is seen waiting for a lock, or has finished (without the
        standing's lock it never waits): PostgreSQL says which, no sleep guesses it."""
        a_refreshed.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and b.is_alive():
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", b_pid or [0]
                )
                row = cursor.fetchone()
            if row and row[0] == "Lock":
                return
            time.sleep(0.01)

    a = threading.Thread(target=record, args=(better, 300.0, a_waits_for_b))
    b = threading.Thread(target=record, args=(worse, 120.0, lambda: None))
    a.start()
    assert a_refreshed.wait(10)
    b.start()
    a.join(20)
    b.join(20)

    assert errors == []
    standing = Standing.objects.get(enrollment=enrollment, challenge=challenge)
    assert (standing.best_id, standing.score) == (better.pk, 300.0)


def test_an_upload_only_adds_to_the_count_and_leaves_the_result_alone(enrollment, challenge):
    """A queued upload changes one number of its student's standing: the count goes up by one
    (an increment, not a recomputation), the counted result and ``standing_changed`` (LTI grade
    passback listens) stay as they were; the first upload of a student creates the standing."""
    sent: list[int] = []

    def listen(sender: object, enrollment_id: int, **_: object) -> None:
        sent.append(enrollment_id)

    standing_changed.connect(listen)
    try:
        first = make_submission(enrollment, challenge)  # no standing yet: computed
        assert Standing.objects.get(enrollment=enrollment).uploads == 1
        best = graded(enrollment, challenge, 150.0, minutes_ago=5)
        sent.clear()
        before = Standing.objects.get(enrollment=enrollment)
        uploads = [make_submission(enrollment, challenge) for _ in range(3)]
        make_submission(enrollment, challenge, counts_for_quota=False)
    finally:
        standing_changed.disconnect(listen)

    after = Standing.objects.get(enrollment=enrollment)
    assert after.uploads == before.uploads + 3 == 5
    assert (after.best_id, after.score, after.passed) == (best.pk, 150.0, before.passed)
    assert after.changed_at > before.changed_at  # boards holding the page see the new count
    assert sent == []
    assert standings_check(challenge) == []
    # Grading one of them does recompute, and says so.
    claimed = lifecycle.claim(str(uploads[0].pk))
    assert claimed is not None
    standing_changed.connect(listen)
    try:
        assert lifecycle.finish(claimed, score=400.0, passed=True, metrics={"score": 400.0})
    finally:
        standing_changed.disconnect(listen)
    assert sent == [enrollment.pk]
    assert Standing.objects.get(enrollment=enrollment).best_id == uploads[0].pk
    assert first.pk != uploads[0].pk
    assert standings_check(challenge) == []
