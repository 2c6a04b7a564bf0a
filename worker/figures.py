"""Pictures drawn after grading: a segmentation model's masks on PUBLIC sample images.

The hidden test images must never appear on a page, so the model runs a second time, on the
challenge's public sample folder (``eval_data.public``: ``<data_dir>-public`` next to the hidden
set), through the same runner (the sandbox) and with the same sanitised bytes as the grading.
The overlays are drawn with torchvision's ``draw_segmentation_masks`` and stored through Django's
storage API as ``figures/<submission id>/samples.png``.

Best effort: a figure that cannot be drawn is logged and never changes the grade.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from eval_data.public import DEFAULT_COUNT, public_dir, read_segmentation_samples
from grader.formats.upload import prepare_upload
from grader.limits import Limits
from grader.runner import Job, Runner
from grader.kinds import get_kind
from submissions.models import Submission

logger = logging.getLogger(__name__)

#: grid spacing between tiles, in pixels
PADDING = 4
ALPHA = 0.55

FetchModel = Callable[[Submission], AbstractContextManager[Path]]


def samples_name(submission: Submission) -> str:
    return f"figures/{submission.pk}/samples.png"


def draw_overlays(inputs: np.ndarray, class_ids: np.ndarray) -> bytes:
    """A PNG grid with one row per sample: the image | the image with predicted masks.

    ``inputs`` are the grader's float32 ``(N, 3, H, W)`` in [0, 1]; ``class_ids`` uint8
    ``(N, H, W)``. Tiles start at ``PADDING`` pixels and are ``PADDING`` apart.
    """
    import torch
    from PIL import Image
    from torchvision.utils import draw_segmentation_masks, make_grid

    from eval_data.kinds.segmentation import LABEL_COLOURS, NUM_CLASSES

    colours = [rgb for class_id, _, rgb in sorted(LABEL_COLOURS) if class_id >= 0]
    classes = torch.arange(NUM_CLASSES).view(-1, 1, 1)
    tiles: list[torch.Tensor] = []
    for image, ids in zip(inputs, class_ids, strict=True):
        # The same rounding as ToTensor's inverse: the left tile is the public image itself.
        pixels = torch.from_numpy(np.rint(image * 255.0).clip(0, 255).astype(np.uint8))
        masks = torch.from_numpy(ids.astype(np.int64)).unsqueeze(0) == classes
        overlay = draw_segmentation_masks(pixels, masks, alpha=ALPHA, colors=colours)
        tiles += [pixels, overlay]
    grid = make_grid(torch.stack(tiles), nrow=2, padding=PADDING, pad_value=255)
    out = io.BytesIO()
    Image.fromarray(grid.permute(1, 2, 0).numpy()).save(out, format="PNG", optimize=True)
    return out.getvalue()


def predict_public(
    submission: Submission,
    runner: Runner,
    model_path: Path,
    inputs: np.ndarray,
    *,
    limits: Limits,
    device: str,
) -> np.ndarray:
    """The model's class ids for ``inputs``, run like the grading run (same runner, same bytes)."""
    challenge = submission.challenge
    kind = get_kind(challenge.task)
    fmt, model = prepare_upload(
        model_path,
        allowed_formats=tuple(challenge.allowed_formats),
        max_bytes=limits.max_file_bytes,
    )
    job = Job(
        task=challenge.task,
        format=fmt,
        model=model,
        device=device,
        batch_size=len(inputs),
        limits=limits,
    )
    per_sample = math.prod(kind.prediction_shape) * 8
    prediction = runner.predict(job, inputs, len(inputs) * per_sample + 4096)
    return kind.check_predictions(prediction.predictions, len(inputs))


def submission_figures_draw(
    submission: Submission,
    runner: Runner,
    *,
    fetch: FetchModel,
    hidden_dir: Path,
    limits: Limits,
    device: str,
) -> dict[str, str]:
    """Draw and store a graded segmentation submission's sample figure; record it on the row.

    Returns the figures recorded (``{}`` if none). Never raises: the grade is already recorded.
    """
    if submission.challenge.task != "segmentation":
        return {}
    folder = public_dir(hidden_dir)
    if not (folder / "test.txt").is_file():
        logger.info("submission %s: no public samples at %s, no figure", submission.pk, folder)
        return {}
    try:
        inputs = read_segmentation_samples(folder, DEFAULT_COUNT)
        with fetch(submission) as model_path:
            class_ids = predict_public(
                submission, runner, model_path, inputs, limits=limits, device=device
            )
        png = draw_overlays(inputs, class_ids)
        name = samples_name(submission)
        # A re-grade draws again: replace the old picture rather than get a renamed copy.
        default_storage.delete(name)
        stored = default_storage.save(name, ContentFile(png))
        figures = {**(submission.figures or {}), "samples": stored}
        Submission.objects.filter(pk=submission.pk).update(figures=figures)
        submission.figures = figures
    except Exception:
        logger.warning("submission %s: the sample figure failed", submission.pk, exc_info=True)
        return {}
    logger.info("submission %s: sample figure stored as %s", submission.pk, stored)
    return figures
