"""Copies through the real worker and the sandbox: the same model uploaded by two students as
``.pt2`` and as TorchScript, a copy whose weights were each nudged by 0.1 % and re-exported, and
a model trained apart (the demo's failing one); the staff report lists exactly the copies, and a
student gets 404 on it and reads nothing about it on their own result."""

from __future__ import annotations

import copy
import csv
import io
from pathlib import Path

import pytest
import torch
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from courses.models import Challenge, Enrollment, Semester
from submissions.models import CopyPair, Submission
from tests.integration.conftest import Worker, wait_for, wait_until_done
from tests.platform.leaks import assert_no_copies

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The keypoint demo's passing and failing models (trained here for this kind alone: the
    session's ``demo_models`` trains every kind), the passing one also as TorchScript and as a
    copy whose every weight was nudged by 0.1 % (× (1 + 0.001 · noise)), exported again."""
    from eval_data.kinds.keypoints.demo import demo_models

    root = tmp_path_factory.mktemp("copies")
    torch.manual_seed(0)
    models = demo_models(0, False)
    nudged = copy.deepcopy(models.passing).eval()
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for tensor in [*nudged.parameters(), *nudged.buffers()]:
            if tensor.is_floating_point():
                tensor.mul_(1 + 0.001 * torch.randn(tensor.shape, generator=generator))
    script = root / "model.pt"
    torch.jit.save(torch.jit.script(models.passing.eval()), str(script))
    return {
        "pass": export(models.passing, models.example, root / "pass.pt2"),
        "script": script,
        "nudged": export(nudged, models.example, root / "nudged.pt2"),
        "fail": export(models.failing, models.example, root / "fail.pt2"),
    }


def export(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model.eval(), (example.clone(),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    return path


def enrol(semester: Semester, username: str) -> User:
    user = User.objects.create_user(username, f"{username}@example.com", username)
    Enrollment.objects.create(user=user, semester=semester)
    return user


def upload_as(user: User, challenge: Challenge, path: Path, worker: Worker) -> Submission:
    client = Client()
    client.force_login(user)
    with path.open("rb") as fh:
        response = client.post(reverse("challenge_detail", args=[challenge.slug]), {"file": fh})
    assert response.status_code == 302, response.content.decode()[:2000]
    submission = Submission.objects.filter(enrollment__user=user).latest("created_at")
    done = wait_until_done(submission.pk, worker)
    assert done.status == Submission.Status.GRADED, done.error
    # The copy check runs after the grade is shown: wait for its end before reading its rows.
    checked = f"submission {submission.pk}: copies checked"
    wait_for(lambda: any(checked in line for line in worker.lines), worker, checked)
    return Submission.objects.get(pk=submission.pk)


def test_it_reports_exactly_the_copies(
    celery_worker: Worker, keypoints: Challenge, semester: Semester, trained: dict[str, Path]
) -> None:
    alice, bob, carol, dave = (enrol(semester, n) for n in ("alice", "bob", "carol", "dave"))

    uploads = {
        "alice": upload_as(alice, keypoints, trained["pass"], celery_worker),
        "bob": upload_as(bob, keypoints, trained["script"], celery_worker),
        "carol": upload_as(carol, keypoints, trained["nudged"], celery_worker),
        "dave": upload_as(dave, keypoints, trained["fail"], celery_worker),
    }

    assert uploads["bob"].format == "torchscript"
    pairs = {
        (p.first.enrollment.user.username, p.second.enrollment.user.username, p.evidence)
        for p in CopyPair.objects.select_related(
            "first__enrollment__user", "second__enrollment__user"
        )
    }
    assert pairs == {
        ("alice", "bob", "same_weights"),
        ("alice", "carol", "near_predictions"),
        ("bob", "carol", "near_predictions"),
    }
    for name in ("alice", "bob", "carol"):
        assert len(uploads[name].weights_fingerprint) == 64
    assert CopyPair.objects.get(evidence="same_weights").similarity > 0.999

    staff = User.objects.create_superuser("boss", "boss@example.com", "boss")
    client = Client()
    client.force_login(staff)
    page = client.get(reverse("challenge_copies", args=[keypoints.slug]))
    assert page.status_code == 200
    assert "3 pairs found" in page.content.decode()
    assert "dave" not in page.content.decode()
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get(reverse("challenge_copies_csv", args=[keypoints.slug])).content.decode()
            )
        )
    )
    assert sorted((r["user_a"], r["user_b"], r["evidence"]) for r in rows) == sorted(pairs)

    student = Client()
    student.force_login(alice)
    for name in ("challenge_copies", "challenge_copies_csv"):
        assert student.get(reverse(name, args=[keypoints.slug])).status_code == 404
    for text in (
        student.get(reverse("submission_detail", args=[uploads["alice"].pk])).content.decode(),
        student.get(reverse("api_submission_detail", args=[uploads["alice"].pk])).content.decode(),
    ):
        assert_no_copies(text, uploads["alice"], uploads["bob"])
