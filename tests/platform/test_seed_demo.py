"""``manage.py seed_demo``: a demo course that is safe to seed twice.

The demo models are stubbed here (training them is ``eval_data``'s and takes a minute); the
hidden test sets are synthesised for real.
"""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from courses.models import Challenge, Course, Enrollment, Semester
from grader.kinds import kind_names
from submissions.models import GradingRun, Submission

# Synthesises every kind's hidden set: several seconds.
pytestmark = pytest.mark.slow


@pytest.fixture
def seeded_settings(settings, tmp_path):
    settings.GRADER_DATA_ROOT = tmp_path / "hidden"
    settings.GRADER_DEMO_MODELS = tmp_path / "demo-models"
    return settings


@pytest.fixture
def fake_models(monkeypatch):
    import eval_data.demo_models

    calls = []

    def build(out_dir: Path, seed: int = 0, progress: bool = False) -> dict[str, Path]:
        calls.append(out_dir)
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        names = [f"{kind}_{end}" for kind in kind_names() for end in ("pass", "fail")]
        paths = {name: Path(out_dir) / f"{name}.pt2" for name in names}
        for name, path in paths.items():
            path.write_bytes(name.encode())
        return paths

    monkeypatch.setattr(eval_data.demo_models, "build_demo_models", build)
    return calls


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", "--insecure-demo-passwords", *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict[str, int]:
    models = (Course, Semester, Challenge, User, Enrollment, Submission, GradingRun)
    return {model.__name__: model.objects.count() for model in models}


def test_it_seeds_a_demo_course_and_is_safe_to_run_twice(db, seeded_settings, fake_models):
    output = seed()

    course = Course.objects.get()
    assert course.title == "Introduction to Deep Learning"
    assert course.timezone == "Europe/Berlin"
    current = Semester.objects.get(is_current=True)
    earlier = Semester.objects.get(is_current=False)
    assert not current.closed and earlier.closed
    assert earlier.starts_on < current.starts_on
    for semester in (current, earlier):
        # A challenge of every kind, in both semesters.
        assert sorted(semester.challenges.values_list("task", flat=True)) == kind_names()
    for challenge in Challenge.objects.all():
        assert (Path(challenge.data_path()) / "manifest.json").is_file()
    for challenge in current.challenges.all():
        local = challenge.deadline.astimezone(course.tzinfo)
        assert (local.hour, local.minute, local.second) == (23, 59, 59)
        assert challenge.is_open()
    # demo and demo2 start clean; the others make the boards look alive.
    for name in ("demo", "demo2"):
        enrollment = Enrollment.objects.get(user__username=name, semester=current)
        assert not enrollment.submissions.exists()
    assert Submission.objects.filter(challenge__semester=current).exists()
    assert Submission.objects.filter(challenge__semester=earlier).exists()
    assert set(GradingRun.objects.values_list("runner", flat=True)) == {"seeded"}
    staff = User.objects.get(username="staff")
    assert staff.is_staff and staff.is_superuser
    # a request, as django-axes' backend needs one to throttle by address
    signing_in = RequestFactory().post("/accounts/login/")
    assert authenticate(signing_in, username="demo", password="demo") is not None
    assert "demo / demo" in output
    assert "keypoints_pass.pt2" in output
    assert len(fake_models) == 1

    before = snapshot()
    seed()

    assert snapshot() == before
    assert len(fake_models) == 1  # the models were there already


def test_it_refuses_demo_passwords_without_debug(db, seeded_settings, settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="--insecure-demo-passwords"):
        call_command("seed_demo", stdout=StringIO())
    assert not User.objects.exists()
