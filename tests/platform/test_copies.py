"""Copies: the candidate search when a grading is recorded, and the staff report (page and CSV)
that only course staff reach. The real worker's path is in tests/integration/test_copies.py."""

from __future__ import annotations

import csv
import hashlib
import io
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.db.models import Q
from django.test import Client
from django.urls import reverse

from courses.models import Challenge, Course, Enrollment, Semester
from grader.kinds import TaskKind
from leaderboard.views import staff as staff_views
from submissions.copies import Prints, copies_record, copy_pairs
from submissions.models import CopyBucket, CopyPair, Submission
from tests.platform.conftest import graded, make_challenge, make_user
from tests.platform.leaks import assert_no_copies

pytestmark = pytest.mark.django_db


def hexdigest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def sketch(kind: TaskKind, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, kind.sketch_size).astype(kind.sketch_dtype)


def near(kind: TaskKind, base: np.ndarray, seed: int = 99) -> np.ndarray:
    """The sketch of a nudged copy: every value moved by a thousandth of the spread or so."""
    noise = np.random.default_rng(seed).normal(0, 0.002, len(base))
    return (base + noise).astype(kind.sketch_dtype)


def prints(name: str, values: np.ndarray, predictions: str = "") -> Prints:
    return Prints(hexdigest(name), hexdigest(predictions or name), values.tobytes())


def student_in(semester: Semester, username: str) -> Enrollment:
    user = make_user(username, first_name=username.title(), last_name="Example")
    return Enrollment.objects.create(user=user, semester=semester)


def upload(
    enrollment: Enrollment, challenge: Challenge, found: Prints, minutes_ago: float = 60
) -> Submission:
    submission = graded(enrollment, challenge, 150.0, minutes_ago=minutes_ago)
    copies_record(submission, found)
    return submission


def evidence(challenge: Challenge) -> set[tuple[str, str, str]]:
    return {
        (pair.first.enrollment.user.username, pair.second.enrollment.user.username, pair.evidence)
        for pair in copy_pairs(challenge)
    }


def test_it_reports_each_kind_of_evidence_between_different_students(
    semester: Semester, challenge: Challenge
) -> None:
    kind = challenge.kind
    base = sketch(kind, 1)
    alice, bob, carol, dave, erin = (
        student_in(semester, name) for name in ("alice", "bob", "carol", "dave", "erin")
    )
    upload(alice, challenge, prints("model", base), minutes_ago=50)
    # Another file (format) of the same weights: same weights; its floats differ a little.
    upload(bob, challenge, prints("model", near(kind, base, 1), "other rounding"), minutes_ago=40)
    # Retrained to the same predictions: only the predictions agree.
    upload(carol, challenge, Prints(hexdigest("c"), hexdigest("model"), base.tobytes()), 30)
    upload(dave, challenge, prints("nudged", near(kind, base, 2)), minutes_ago=20)
    upload(erin, challenge, prints("independent", sketch(kind, 2)), minutes_ago=10)

    assert evidence(challenge) == {
        ("alice", "bob", "same_weights"),
        ("alice", "carol", "same_predictions"),
        ("alice", "dave", "near_predictions"),
        ("bob", "carol", "near_predictions"),
        ("bob", "dave", "near_predictions"),
        ("carol", "dave", "near_predictions"),
    }
    pair = CopyPair.objects.get(evidence="same_predictions")
    assert pair.similarity == 1.0
    assert CopyPair.objects.get(first__enrollment=alice, second__enrollment=dave).similarity > 0.99


def test_models_that_ignore_their_input_are_paired_by_weights_only(
    semester: Semester, challenge: Challenge
) -> None:
    """Untrained or constant models (the mean face for every image) predict alike for everyone
    who uploads one: no copy unless the weights are the same."""
    kind = challenge.kind
    mean_face = np.tile(sketch(kind, 5)[:30], kind.sketch_size // 30)
    assert kind.copy_input_blind(mean_face) and not kind.copy_input_blind(sketch(kind, 5))
    alice, bob, carol, dave = (
        student_in(semester, name) for name in ("alice", "bob", "carol", "dave")
    )
    # Three constant models trained apart: the same predictions, different weights.
    for minutes, who in zip((50, 40, 30), (alice, bob, carol), strict=True):
        upload(who, challenge, prints(f"mean of {who.user}", mean_face, "mean face"), minutes)
    # Dave hands in Alice's very file.
    upload(dave, challenge, prints("mean of alice", mean_face, "mean face"), minutes_ago=20)

    assert evidence(challenge) == {("alice", "dave", "same_weights")}
    assert not CopyBucket.objects.exists()


def test_it_leaves_own_uploads_other_courses_and_other_test_sets_predictions_alone(
    semester: Semester, challenge: Challenge, course: Course
) -> None:
    kind = challenge.kind
    same = prints("model", sketch(kind, 1))
    alice = student_in(semester, "alice")
    upload(alice, challenge, same)
    upload(alice, challenge, same)  # the same student again
    # Other hidden data: predictions say nothing there (but the same weights would, below).
    other_data = make_challenge(semester, slug="other-set", data_dir="another/set")
    upload(student_in(semester, "bob"), other_data, Prints("b" * 64, same.predictions, same.sketch))
    other_course = Course.objects.create(slug="other", title="Other course")
    elsewhere = Semester.objects.create(course=other_course, slug="ws", starts_on="2026-10-01")
    upload(student_in(elsewhere, "carol"), make_challenge(elsewhere, slug="kp-other"), same)
    ta = Enrollment.objects.create(
        user=make_user("helper"), semester=semester, role=Enrollment.Role.TA
    )
    upload(ta, challenge, same)

    assert CopyPair.objects.count() == 0
    upload(student_in(semester, "erin"), other_data, same)
    assert evidence(other_data) == {
        ("alice", "erin", "same_weights"),
        ("bob", "erin", "same_predictions"),  # both on the other set
    }


def test_it_finds_copies_from_an_earlier_semester_of_the_course(
    semester: Semester, earlier_semester: Semester, challenge: Challenge
) -> None:
    last_year = make_challenge(earlier_semester)
    same = prints("model", sketch(challenge.kind, 1))
    upload(student_in(earlier_semester, "senior"), last_year, same, minutes_ago=60 * 24 * 200)
    # Taking the course again with one's own model from last year is no copy.
    senior_again = Enrollment.objects.create(
        user=User.objects.get(username="senior"), semester=semester
    )
    upload(senior_again, challenge, same)
    upload(student_in(semester, "junior"), challenge, same)

    assert evidence(challenge) == {("senior", "junior", "same_weights")}
    assert evidence(last_year) == {("senior", "junior", "same_weights")}


def test_a_regrade_that_fails_an_upload_drops_its_pairs(
    semester: Semester, challenge: Challenge
) -> None:
    same = prints("model", sketch(challenge.kind, 1))
    upload(student_in(semester, "alice"), challenge, same)
    later = upload(student_in(semester, "bob"), challenge, same)
    assert CopyPair.objects.count() == 1

    copies_record(later, None)

    assert CopyPair.objects.count() == 0
    later.refresh_from_db()
    assert later.weights_fingerprint == ""
    assert not CopyBucket.objects.filter(submission=later).exists()


def test_it_compares_only_the_candidates_its_buckets_find(
    semester: Semester,
    challenge: Challenge,
    monkeypatch: pytest.MonkeyPatch,
    django_assert_num_queries: Any,
) -> None:
    kind = challenge.kind
    for number in range(300):
        student = student_in(semester, f"s{number}")
        graded_row = graded(student, challenge, 120.0)
        copies_record(graded_row, prints(f"own {number}", sketch(kind, 1000 + number)))
    original = sketch(kind, 1)
    upload(student_in(semester, "alice"), challenge, prints("model", original))
    compared: list[int] = []
    similarity = type(kind).copy_similarity

    def counted(self: TaskKind, a: np.ndarray, b: np.ndarray) -> float:
        compared.append(1)
        return similarity(self, a, b)

    monkeypatch.setattr(type(kind), "copy_similarity", counted)
    copier = graded(student_in(semester, "mallory"), challenge, 150.0)

    # The same queries whatever the number of students: the challenge; then (a savepoint
    # under the test's transaction) the fingerprints, the old and the new bucket keys (release);
    # then (savepoint) the course's lock, the old pairs, the student, the candidates by
    # fingerprint, those by bucket, the new pairs (release).
    with django_assert_num_queries(14):
        copies_record(copier, prints("nudged", near(kind, original)))

    assert evidence(challenge) == {("alice", "mallory", "near_predictions")}
    assert len(compared) < 10, f"{len(compared)} of 301 uploads compared"


def test_a_file_the_whole_class_handed_in_gives_pairs_in_proportion_to_its_uploads(
    semester: Semester,
    challenge: Challenge,
    settings: Any,
    django_assert_max_num_queries: Any,
) -> None:
    """The same starter model handed in by 30 students, twice each: every upload is paired
    with the first uploads of the first three students who handed it in (and those three with
    each other), not with every other upload (30 · 29 · 2 pairs); a nudged copy of it too."""
    settings.COPIES_EXACT_PAIRS = 3
    kind = challenge.kind
    starter = prints("starter", sketch(kind, 1))
    students = [student_in(semester, f"s{number:02}") for number in range(30)]
    for round_ in range(2):
        for number, student in enumerate(students):
            upload(student, challenge, starter, minutes_ago=100 - 50 * round_ - number)
    assert Submission.objects.count() == 60

    pairs = list(copy_pairs(challenge))
    # Each upload adds at most 3 pairs; later ones find the first three students' uploads.
    assert len(pairs) <= 3 * 60
    assert {p.evidence for p in pairs} == {"same_weights"}
    first_three = {"s00", "s01", "s02"}
    for student in students:
        partners = {
            pair.first.enrollment.user.username
            for pair in pairs
            if pair.second.enrollment_id == student.pk
        } | {
            pair.second.enrollment.user.username
            for pair in pairs
            if pair.first.enrollment_id == student.pk
        }
        name = student.user.username
        assert partners >= first_three - {name}, (name, partners)
    # A nudged copy is not in the exact group: it is compared with the bucket's uploads and
    # paired with every one it is near, in the same queries as against a single upload.
    nudged = graded(student_in(semester, "mallory"), challenge, 150.0)
    with django_assert_max_num_queries(14):
        copies_record(nudged, prints("nudged", near(kind, sketch(kind, 1))))
    mine = CopyPair.objects.filter(Q(first=nudged) | Q(second=nudged))
    assert mine.count() == 60 and {p.evidence for p in mine} == {"near_predictions"}


# --- the report -------------------------------------------------------------------------------


@pytest.fixture
def copied(semester: Semester, challenge: Challenge) -> tuple[Submission, Submission]:
    same = prints("model", sketch(challenge.kind, 1))
    first = upload(student_in(semester, "alice"), challenge, same, minutes_ago=90)
    mallory = make_user("mallory", first_name="=HYPERLINK(1)", last_name="")
    second = upload(Enrollment.objects.create(user=mallory, semester=semester), challenge, same)
    return first, second


def test_staff_see_both_students_the_evidence_and_both_results(
    staff: User, challenge: Challenge, copied: tuple[Submission, Submission]
) -> None:
    client = Client()
    client.force_login(staff)

    response = client.get(reverse("challenge_copies", args=[challenge.slug]))

    assert response.status_code == 200
    page = response.content.decode()
    for submission in copied:
        assert submission.enrollment.user.username in page
        assert submission.enrollment.handle in page
        assert reverse("submission_detail", args=[submission.pk]) in page
    assert "Alice Example" in page
    assert "Same weights" in page
    assert "1.0000" in page
    assert "<caption>" in page and 'class="table-scroll"' in page
    assert page.index("Alice Example") < page.index("mallory")  # the first upload first
    gradebook = client.get(reverse("challenge_staff", args=[challenge.slug])).content.decode()
    assert reverse("challenge_copies", args=[challenge.slug]) in gradebook


def test_the_csv_names_both_students_and_defuses_formulas(
    ta: User, challenge: Challenge, copied: tuple[Submission, Submission]
) -> None:
    client = Client()
    client.force_login(ta)  # a TA of the semester

    response = client.get(reverse("challenge_copies_csv", args=[challenge.slug]))

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 1
    row = rows[0]
    first, second = copied
    assert (row["user_a"], row["user_b"]) == ("alice", "mallory")
    assert (row["handle_a"], row["handle_b"]) == (
        first.enrollment.handle,
        second.enrollment.handle,
    )
    assert row["evidence"] == "same_weights"
    assert float(row["similarity"]) == 1.0
    assert (row["submission_a"], row["submission_b"]) == (str(first.pk), str(second.pk))
    assert row["uploaded_a"] < row["uploaded_b"]
    assert row["name_b"] == "'=HYPERLINK(1)"


@pytest.mark.parametrize("who", ["student", "outsider", "anonymous", "site staff"])
def test_anyone_else_gets_404_on_both(
    who: str,
    student: User,
    outsider: User,
    challenge: Challenge,
    copied: tuple[Submission, Submission],
) -> None:
    client = Client()
    if who == "student":
        client.force_login(student)
    elif who == "outsider":
        client.force_login(outsider)
    elif who == "site staff":  # staff without the grade-book permission
        client.force_login(make_user("admin-only", is_staff=True))
    for name in ("challenge_copies", "challenge_copies_csv"):
        assert client.get(reverse(name, args=[challenge.slug])).status_code == 404


def test_the_page_is_paginated(
    staff: User,
    semester: Semester,
    challenge: Challenge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    same = prints("model", sketch(challenge.kind, 1))
    for number in range(4):
        upload(student_in(semester, f"s{number}"), challenge, same, minutes_ago=100 - number)
    monkeypatch.setattr(staff_views, "COPIES_PER_PAGE", 4)
    client = Client()
    client.force_login(staff)
    url = reverse("challenge_copies", args=[challenge.slug])

    first, second = (client.get(url, {"page": n}).content.decode() for n in (1, 2))

    assert "6 pairs found" in first
    assert first.count('<tr class="copy ') == 4
    assert second.count('<tr class="copy ') == 2
    assert "page 2 of 2" in second


def test_a_students_result_page_and_api_never_mention_copies(
    challenge: Challenge, copied: tuple[Submission, Submission]
) -> None:
    first, second = copied
    for mine, theirs in ((first, second), (second, first)):
        client = Client()
        client.force_login(mine.enrollment.user)
        texts = [
            client.get(reverse("submission_detail", args=[mine.pk])).content.decode(),
            client.get(reverse("api_submission_detail", args=[mine.pk])).content.decode(),
            client.get(reverse("challenge_detail", args=[challenge.slug])).content.decode(),
        ]
        for text in texts:
            assert_no_copies(text, mine, theirs)


def test_a_published_regrade_updates_the_pairs(
    semester: Semester, challenge: Challenge, staff: User
) -> None:
    """Through the real claim → record → complete → publish path: the attempts' fingerprints
    stay on their runs until the batch is published, then replace the submissions' pairs."""
    from dataclasses import replace

    from grader.evaluate import Evaluation
    from submissions.lifecycle import run_claim
    from submissions.regrade import regrade_batch_publish, regrade_batch_start
    from submissions.regrade.attempts import attempt_record
    from submissions.results import GradingOutcome

    kind = challenge.kind
    alice, bob = student_in(semester, "alice"), student_in(semester, "bob")
    upload(alice, challenge, prints("alice's", sketch(kind, 1)))
    upload(bob, challenge, prints("bob's", sketch(kind, 2)))
    assert CopyPair.objects.count() == 0
    batch = regrade_batch_start(challenge, staff, "new grader", dry_run=True)
    # The new grader finds that both hold the same weights (say, a changed fingerprint).
    same = prints("the same", sketch(kind, 3))
    result = Evaluation(
        task=challenge.task,
        format="pt2",
        score=150.0,
        passed=True,
        threshold=1.0,
        metrics={"score": 150.0},
        dataset_hash="a" * 64,
        params=10,
        seconds=0.1,
        runner="process",
    )
    for run in batch.runs.order_by("pk"):
        claimed = run_claim(run.pk)
        assert claimed is not None
        found = replace(
            result,
            weights_fingerprint=same.weights,
            predictions_fingerprint=same.predictions,
            predictions_sketch=same.sketch,
        )
        attempt_record(claimed, GradingOutcome("process", "a" * 64, found), last_try=False)
    assert CopyPair.objects.count() == 0  # a dry run: nothing published yet

    regrade_batch_publish(batch, staff)

    assert evidence(challenge) == {("alice", "bob", "same_weights")}
