"""The kind's picture: predicted masks on PUBLIC sample images, drawn while grading, stored with
the result.

Real grading of a tiny exported segmentation model through a plain child process (the sandbox
has its own tests); the public folder holds different images from the hidden test set, and the
stored PNG's left column must be those public images.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image

from courses.models import Challenge, Semester
from eval_data.kinds.segmentation import read_msrc
from eval_data.public import public_dir, synth_public
from grader.kinds.segmentation import PADDING
from submissions.models import Submission
from submissions.results import picture_name
from tests.platform.conftest import make_challenge, make_submission
from worker.grading import evaluate_submission, this_worker
from worker.tasks import grade_submission

# Each test starts its grading runners anew (the settings they read change per test).
pytestmark = pytest.mark.usefixtures("fresh_runners")

SEG_DIR = "test-semester/segmentation"
HIDDEN_IMAGES = 3
PUBLIC_IMAGES = 2
SIZE = 240


@pytest.fixture(scope="module")
def seg_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GRADER_DATA_ROOT with a tiny hidden segmentation set and its public samples."""
    from eval_data import get_kind
    from eval_data.manifest import write_manifest

    root = tmp_path_factory.mktemp("seg-hidden")
    hidden = root / SEG_DIR
    hidden.mkdir(parents=True)
    get_kind("segmentation").synth(hidden, HIDDEN_IMAGES, 11)
    write_manifest(hidden, "segmentation")
    synth_public(hidden, "segmentation", seed=11, count=PUBLIC_IMAGES)
    return root


@pytest.fixture(scope="module")
def seg_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1x1 convolution: class scores from each pixel's colour, so masks follow the image."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Conv2d(3, 23, 1).eval()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(
        model, (torch.rand(2, 3, SIZE, SIZE),), dynamic_shapes=({0: batch},)
    )
    path = tmp_path_factory.mktemp("seg-model") / "seg.pt2"
    torch.export.save(program, str(path))
    return path


@pytest.fixture
def seg_challenge(semester: Semester, settings, seg_root: Path) -> Challenge:
    settings.GRADER_DATA_ROOT = seg_root
    return make_challenge(
        semester,
        task="segmentation",
        slug="segmentation-ws2026",
        title="Segmentation",
        data_dir=SEG_DIR,
        threshold=0.0,
        max_file_mb=5,
    )


def left_tiles(png: bytes, count: int) -> list[np.ndarray]:
    grid = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    step = SIZE + PADDING
    return [
        grid[PADDING + i * step : PADDING + i * step + SIZE, PADDING : PADDING + SIZE]
        for i in range(count)
    ]


def as_pixels(inputs: np.ndarray) -> list[np.ndarray]:
    return [np.rint(x * 255).clip(0, 255).astype(np.uint8).transpose(1, 2, 0) for x in inputs]


@pytest.mark.slow  # over four seconds: grades through the sandbox
def test_it_draws_masks_on_the_public_samples_after_grading(
    enrollment, seg_challenge, seg_model, seg_root, django_capture_on_commit_callbacks
):
    submission = make_submission(enrollment, seg_challenge, content=seg_model.read_bytes())

    with django_capture_on_commit_callbacks(execute=True):
        grade_submission.run(str(submission.pk))

    submission.refresh_from_db()
    assert submission.status == Submission.Status.GRADED, submission.error
    assert submission.pictures == {"samples": picture_name(submission, "samples")}
    with default_storage.open(submission.pictures["samples"], "rb") as f:
        png = f.read()
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    step = SIZE + PADDING
    assert image.size == (PADDING + 2 * step, PADDING + PUBLIC_IMAGES * step)

    public, _, _, _ = read_msrc(public_dir(seg_root / SEG_DIR))
    hidden, _, _, _ = read_msrc(seg_root / SEG_DIR)
    tiles = left_tiles(png, PUBLIC_IMAGES)
    for tile, expected in zip(tiles, as_pixels(public), strict=True):
        np.testing.assert_array_equal(tile, expected)
    # ... and none of them is a hidden test image.
    for tile in tiles:
        for secret in as_pixels(hidden):
            assert not np.array_equal(tile, secret)


def test_it_draws_nothing_without_a_public_folder(
    enrollment, seg_challenge, seg_model, seg_root, tmp_path, settings
):
    # The same hidden set somewhere without its "-public" sibling.
    import shutil

    shutil.copytree(seg_root / SEG_DIR, tmp_path / SEG_DIR)
    settings.GRADER_DATA_ROOT = tmp_path
    submission = make_submission(enrollment, seg_challenge, content=seg_model.read_bytes())

    grade_submission.run(str(submission.pk))

    submission.refresh_from_db()
    assert submission.status == Submission.Status.GRADED, submission.error
    assert submission.pictures == {}
    assert not default_storage.exists(picture_name(submission, "samples"))


@pytest.mark.slow  # over four seconds: grades through the sandbox
def test_it_never_fails_the_grade_when_the_picture_fails(
    enrollment, seg_challenge, seg_model, seg_root, monkeypatch, caplog
):
    from grader.kinds.segmentation import Segmentation

    def broken(*args, **kwargs):
        raise RuntimeError("no drawing today")

    monkeypatch.setattr(Segmentation, "draw_samples", broken)
    submission = make_submission(enrollment, seg_challenge, content=seg_model.read_bytes())

    grade_submission.run(str(submission.pk))

    submission.refresh_from_db()
    assert submission.status == Submission.Status.GRADED
    assert submission.pictures == {}
    assert "the sample picture failed" in caplog.text


def test_a_regrade_evaluation_draws_no_picture(enrollment, seg_challenge, seg_model, seg_root):
    submission = make_submission(enrollment, seg_challenge, content=seg_model.read_bytes())

    outcome = evaluate_submission(submission, this_worker("test"), pictures=False)

    assert outcome.error is None and outcome.evaluation is not None
    assert outcome.pictures == {}


def test_it_seeds_public_samples_beside_the_demo_hidden_set(semester, settings, tmp_path):
    from submissions.demo import DemoSeeder

    settings.GRADER_DATA_ROOT = tmp_path
    challenge = make_challenge(
        semester, task="segmentation", slug="seg-demo", data_dir="ws/segmentation"
    )
    said: list[str] = []

    DemoSeeder(say=said.append).public_samples(challenge, seed=1)
    DemoSeeder(say=said.append).public_samples(challenge, seed=1)  # a second run adds nothing

    folder = tmp_path / "ws" / "segmentation-public"
    assert (folder / "test.txt").read_text().count(".bmp") == 4
    assert len(said) == 1


@pytest.mark.slow  # over four seconds: grades through the sandbox
def test_it_records_the_grade_and_draws_the_picture_when_the_mail_server_is_down(
    transactional_db, enrollment, seg_challenge, seg_model, seg_root, settings, caplog
):
    """A real SMTP client pointed at a closed port, and real commits (no captured hooks): the
    email fails after the grade is committed, which must not stop the picture or fail the task."""
    from tests.brokers import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    submission = make_submission(enrollment, seg_challenge, content=seg_model.read_bytes())

    grade_submission.run(str(submission.pk))

    submission.refresh_from_db()
    assert submission.status == Submission.Status.GRADED, submission.error
    assert submission.pictures == {"samples": picture_name(submission, "samples")}
    assert default_storage.exists(submission.pictures["samples"])
    assert f"emailing the result of {submission.pk} failed" in caplog.text
    assert "Connection refused" in caplog.text
