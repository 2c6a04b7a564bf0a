"""Upgrading a database from before the courses app: rows, tables, permissions and the per-kind
fields come through; API tokens from before only their digests were stored keep working (on
SQLite here, and on PostgreSQL in ``make test``'s second pass)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from submissions.models import ApiToken

BEFORE = [
    ("leaderboard", "0002_semester_closed_at"),
    ("submissions", "0006_standing"),
    ("contenttypes", "0002_remove_content_type_name"),
    ("auth", "0012_alter_user_first_name_max_length"),
]


def migrate(targets: list[tuple[str, str | None]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return MigrationExecutor(connection)


@pytest.mark.django_db(transaction=True)
def test_it_moves_courses_out_of_the_leaderboard_app_keeping_everything() -> None:
    # The courses app did not exist yet: none of its migrations applied.
    old = migrate([*BEFORE, ("courses", None)]).loader.project_state(BEFORE).apps
    Course = old.get_model("leaderboard", "Course")
    Semester = old.get_model("leaderboard", "Semester")
    Challenge = old.get_model("leaderboard", "Challenge")
    Enrollment = old.get_model("leaderboard", "Enrollment")
    Submission = old.get_model("submissions", "Submission")
    Standing = old.get_model("submissions", "Standing")
    User = old.get_model("auth", "User")
    Group = old.get_model("auth", "Group")
    Permission = old.get_model("auth", "Permission")
    ContentType = old.get_model("contenttypes", "ContentType")

    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    course = Course.objects.create(slug="i2dl", title="I2DL", timezone="Europe/Berlin")
    semester = Semester.objects.create(
        course=course, slug="ws", title="Winter", starts_on=dt.date(2026, 10, 1)
    )
    pooled = Challenge.objects.create(
        semester=semester,
        task="segmentation",
        slug="seg",
        title="Seg",
        deadline=now,
        threshold=0.6,
        data_dir="ws/seg",
        use_pooled_accuracy=True,
    )
    plain = Challenge.objects.create(
        semester=semester, task="keypoints", slug="kp", title="KP", deadline=now, threshold=100,
        data_dir="ws/kp",
    )  # fmt: skip
    user = User.objects.create(username="ada")
    enrollment = Enrollment.objects.create(user=user, semester=semester, handle="u1234")
    submission = Submission.objects.create(
        enrollment=enrollment, challenge=plain, file="submissions/x.bin", sha256="0" * 64,
        size=1, format="pt2", status="graded", score=200.0, passed=True,
        metrics={"score": 200.0, "mse": 0.0025}, figures={"samples": "figures/x/samples.png"},
    )  # fmt: skip
    Standing.objects.create(
        enrollment=enrollment, challenge=plain, best=submission, score=200.0, passed=True,
        mse=0.0025, uploads=1,
    )  # fmt: skip
    # A group of TAs allowed to change challenges, as an operator would have set it up.
    challenge_type, _ = ContentType.objects.get_or_create(
        app_label="leaderboard", model="challenge"
    )
    permission, _ = Permission.objects.get_or_create(
        content_type=challenge_type, codename="change_challenge", defaults={"name": "Can change"}
    )
    group = Group.objects.create(name="TAs")
    group.permissions.add(permission)

    new = migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    apps = new.loader.project_state(new.loader.graph.leaf_nodes()).apps

    NewChallenge = apps.get_model("courses", "Challenge")
    assert NewChallenge.objects.get(pk=pooled.pk).ranked_by == "pooled_accuracy"
    assert NewChallenge.objects.get(pk=plain.pk).ranked_by == ""
    assert apps.get_model("courses", "Enrollment").objects.get().handle == "u1234"
    NewSubmission = apps.get_model("submissions", "Submission")
    moved = NewSubmission.objects.get(pk=submission.pk)
    assert moved.challenge_id == plain.pk
    assert moved.pictures == {"samples": "figures/x/samples.png"}
    standing = apps.get_model("submissions", "Standing").objects.get()
    assert standing.headline == {"mse": 0.0025}
    # Scored by the best upload on the whole set: the standing after the reveal is the same.
    assert (
        standing.final_best_id,
        standing.final_score,
        standing.final_public_score,
        standing.final_passed,
        standing.final_headline,
    ) == (submission.pk, 200.0, 200.0, True, {"mse": 0.0025})
    assert NewChallenge.objects.get(pk=plain.pk).scoring == "best"
    tables = set(connection.introspection.table_names())
    assert {
        "courses_course",
        "courses_semester",
        "courses_challenge",
        "courses_enrollment",
    } <= tables
    assert not {t for t in tables if t.startswith("leaderboard_")}
    # The group keeps its permission, now on the courses app's challenge.
    kept = apps.get_model("auth", "Group").objects.get(name="TAs").permissions.get()
    assert (kept.content_type.app_label, kept.codename) == ("courses", "change_challenge")


@pytest.mark.django_db(transaction=True)
def test_it_hashes_the_existing_api_tokens_in_place_and_they_keep_working() -> None:
    before_hashing = [("submissions", "0010_submission_selected")]
    old = migrate(before_hashing).loader.project_state(before_hashing).apps
    User = old.get_model("auth", "User")
    OldToken = old.get_model("submissions", "ApiToken")
    ada = User.objects.create(username="ada", password=make_password("ada"))
    alan = User.objects.create(username="alan", password=make_password("alan"))
    kept = OldToken.objects.create(user=ada, key="ada-token-from-before-the-hashing-00000000")
    OldToken.objects.create(user=alan, key="alan-token-from-before-the-hashing-0000000")

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    row = ApiToken.objects.values().get(user_id=ada.pk)
    assert row["digest"] == hashlib.sha256(kept.key.encode()).hexdigest()
    assert row["prefix"] == "ada-toke"
    assert not any(kept.key in str(value) for value in row.values())
    assert ApiToken.objects.count() == 2
    api = Client(HTTP_AUTHORIZATION=f"Token {kept.key}")
    assert api.get("/api/challenges/").status_code == 200
    # The stored digest is no key: a leaked table or backup opens nothing.
    leaked = Client(HTTP_AUTHORIZATION="Token " + row["digest"])
    assert leaked.get("/api/challenges/").status_code == 401
