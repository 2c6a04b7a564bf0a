"""Shared fixtures for the platform's tests: people, a course with one keypoints challenge, a tiny
synthetic hidden test set, tiny exported models, and a recorder instead of the broker.

Nothing here runs a Celery worker: unit tests call the task or the service directly, and the
messages the code would send are recorded (``sent``) rather than written to a broker.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from courses.models import Challenge, Course, Enrollment, Semester
from grader.evaluate import json_number
from submissions.models import ApiToken, Submission

KEYPOINT_IMAGES = 8
DATA_DIR = "test-semester/keypoints"


# --- environment ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GRADER_DATA_ROOT holding a tiny synthetic keypoints test set with its manifest."""
    from eval_data import get_kind
    from eval_data.manifest import write_manifest

    root = tmp_path_factory.mktemp("hidden")
    folder = root / DATA_DIR
    folder.mkdir(parents=True)
    get_kind("keypoints").synth(folder, KEYPOINT_IMAGES, 7)
    write_manifest(folder, "keypoints")
    return root


@pytest.fixture(autouse=True)
def platform_settings(settings: Any, tmp_path: Path, data_root: Path) -> Any:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.GRADER_DATA_ROOT = data_root
    settings.GRADER_DEMO_MODELS = tmp_path / "demo-models"
    # Unit tests grade with a plain child process; the sandbox has its own tests.
    settings.GRADER_SANDBOX = False
    settings.SITE_URL = "http://testserver"
    # Templates must render without collectstatic whatever DEBUG the environment sets, and
    # whitenoise wants its (empty) folder to exist.
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STATIC_ROOT.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    return settings


@dataclass
class Sent:
    name: str
    args: list[Any]
    options: dict[str, Any]


@pytest.fixture(autouse=True)
def sent(monkeypatch: pytest.MonkeyPatch) -> list[Sent]:
    """Messages for the broker, recorded instead of sent."""
    from config.celery import app

    messages: list[Sent] = []

    def send_task(name: str, args: Any = None, **options: Any) -> None:
        messages.append(Sent(name, list(args or []), options))

    monkeypatch.setattr(app, "send_task", send_task)
    return messages


# --- people and a course ----------------------------------------------------------------------


def make_user(username: str, **extra: Any) -> User:
    return User.objects.create_user(
        username=username, password=username, email=f"{username}@example.com", **extra
    )


@pytest.fixture
def earlier_semester(course: Course) -> Semester:
    return Semester.objects.create(
        course=course, slug="ss2026", title="Summer 2026", starts_on="2026-04-01", closed=True
    )


def make_challenge(semester: Semester, **fields: Any) -> Challenge:
    values: dict[str, Any] = {
        **Challenge.defaults_for("keypoints"),
        "task": "keypoints",
        "slug": f"keypoints-{semester.slug}",
        "title": "Facial keypoints",
        "deadline": timezone.now() + timedelta(days=7),
        # The all-zero test model scores about 5 on the test set: it passes at 1.
        "threshold": 1.0,
        "data_dir": DATA_DIR,
        "daily_quota": 3,
        "max_file_mb": 2,
        "time_limit_seconds": 60,
        **fields,
    }
    return Challenge.objects.create(semester=semester, **values)


@pytest.fixture
def challenge(semester: Semester) -> Challenge:
    return make_challenge(semester)


@pytest.fixture
def student(semester: Semester) -> User:
    user = make_user("student")
    Enrollment.objects.create(user=user, semester=semester)
    return user


@pytest.fixture
def enrollment(student: User, semester: Semester) -> Enrollment:
    return Enrollment.objects.get(user=student, semester=semester)


@pytest.fixture
def other_student(semester: Semester) -> User:
    user = make_user("other")
    Enrollment.objects.create(user=user, semester=semester)
    return user


@pytest.fixture
def ta(semester: Semester) -> User:
    user = make_user("ta")
    Enrollment.objects.create(user=user, semester=semester, role=Enrollment.Role.TA)
    return user


@pytest.fixture
def staff(db: Any) -> User:
    return make_user("staff", is_staff=True, is_superuser=True)


@pytest.fixture
def outsider(db: Any) -> User:
    """Signed in, but enrolled in nothing."""
    return make_user("outsider")


@pytest.fixture
def token(student: User) -> str:
    return ApiToken.issue(student)


# --- single sign-on ----------------------------------------------------------------------------

#: the issuer ``oidc_on`` configures
OIDC_ISSUER = "https://login.uni.example"


@pytest.fixture
def oidc_on(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """University sign-in configured, with the provider's discovery document as if fetched
    (nothing reaches the provider: tests with a real one are in ``tests/accounts``)."""
    from accounts import oidc

    settings.OIDC_ISSUER = OIDC_ISSUER
    settings.OIDC_CLIENT_ID = "leaderboard"
    settings.OIDC_CLIENT_SECRET = "secret"
    settings.OIDC_PROVIDER_NAME = "TUM Login"
    monkeypatch.setitem(
        oidc._discovered,
        OIDC_ISSUER,
        {
            "issuer": OIDC_ISSUER,
            "authorization_endpoint": f"{OIDC_ISSUER}/authorize",
            "token_endpoint": f"{OIDC_ISSUER}/token",
            "userinfo_endpoint": f"{OIDC_ISSUER}/userinfo",
            "jwks_uri": f"{OIDC_ISSUER}/jwks",
        },
    )
    return settings


# --- models and submissions -------------------------------------------------------------------


def _export(module: Any, path: Path) -> Path:
    import torch

    example = torch.zeros(2, 1, 96, 96)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(module.eval(), (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    return path


@dataclass(frozen=True)
class TinyModels:
    #: predicts (0, 0) for every keypoint: the centre of the image
    zeros: Path
    #: returns 15 values per image instead of 30
    wrong_shape: Path

    def zeros_bytes(self) -> bytes:
        return self.zeros.read_bytes()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    import torch
    from torch import nn

    folder = tmp_path_factory.mktemp("models")

    class Zeros(nn.Module):
        def __init__(self, outputs: int) -> None:
            super().__init__()
            self.head = nn.Linear(96 * 96, outputs)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(x.flatten(1))

    return TinyModels(
        zeros=_export(Zeros(30), folder / "zeros.pt2"),
        wrong_shape=_export(Zeros(15), folder / "wrong_shape.pt2"),
    )


@pytest.fixture(scope="session")
def expected_zero_mse(data_root: Path) -> float:
    """MSE of the all-zero model on the test set: the mean of the squared labels."""
    import eval_data

    dataset = eval_data.load(data_root / DATA_DIR, "keypoints")
    return float(np.mean(dataset.labels.astype(np.float64) ** 2))


def model_upload(path: Path, name: str = "model.pt2") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, path.read_bytes(), content_type="application/octet-stream")


def garbage_upload(name: str = "model.pt2") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"this is not a model " * 50)


def make_submission(
    enrollment: Enrollment,
    challenge: Challenge,
    *,
    content: bytes = b"model bytes",
    created_at: datetime | None = None,
    **fields: Any,
) -> Submission:
    """A submission row as if uploaded at ``created_at`` (default: now), queued unless told."""
    created_at = created_at or timezone.now()
    fields.setdefault("format", "pt2")
    submission = Submission(
        id=uuid.uuid4(),
        enrollment=enrollment,
        challenge=challenge,
        sha256=hashlib.sha256(content).hexdigest(),
        size=len(content),
        created_at=created_at,
        queued_at=created_at,
        **fields,
    )
    submission.file.save("upload.bin", ContentFile(content), save=False)
    submission.save(force_insert=True)
    return submission


def graded(
    enrollment: Enrollment,
    challenge: Challenge,
    score: float,
    *,
    minutes_ago: float = 60,
    **fields: Any,
) -> Submission:
    values: dict[str, Any] = {
        "status": Submission.Status.GRADED,
        "score": score,
        "passed": score >= challenge.threshold,
        # JSON has no infinity: the grader writes "Infinity", and so does this helper.
        "metrics": {"score": json_number(score), "mse": 1 / (2 * score) if score else None},
        **fields,
    }
    return make_submission(
        enrollment,
        challenge,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
        **values,
    )


MakeSubmission = Callable[..., Submission]


def deliver_emails(sent: list[Any]) -> None:
    """What a worker does with the emails the pages sent (``accounts.mail``): the task, called
    directly with the arguments as the broker would hand them over (JSON)."""
    import json

    from accounts.mail import SEND_EMAIL
    from worker.tasks import send_email

    for message in sent:
        assert message.name == SEND_EMAIL
        send_email(*json.loads(json.dumps(message.args)))
    sent.clear()


@pytest.fixture
def fresh_runners() -> Iterator[None]:
    """The worker's grading runners (a warm sandbox each) are kept per process: a test that
    grades starts from none and leaves none, since the settings they read change per test."""
    from worker import grading

    grading._runners.clear()
    yield
    grading._runners.clear()
