"""Semantic segmentation on MSRC-v2: 23 classes, void pixels (-1) ignored.

The ranking score is the mean of per-image accuracies over non-void pixels (the course evaluates
with batch size 1); images with no labelled pixel are skipped and counted. Pooled accuracy,
per-class accuracy and per-class IoU are extra figures (``None`` for a class that never occurs).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from grader.errors import GradingError
from grader.i18n import gettext_noop
from grader.kinds import CourseModel, Figure, Params, TaskKind, register

if TYPE_CHECKING:
    from eval_data.dataset import Dataset

NUM_CLASSES = 23
SIZE = 240
#: sample pictures: grid spacing between tiles in pixels, and how opaque the masks are
PADDING = 4
ALPHA = 0.55


def segmentation_metrics(predictions: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    """Metrics from predicted class ids ``(N, H, W)`` and targets ``(N, H, W)`` with -1 = void."""
    per_image: list[float] = []
    skipped = 0
    correct_total = 0
    labelled_total = 0
    # Confusion counts on labelled pixels: true class x predicted class.
    confusion = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    for pred, target in zip(predictions, targets, strict=True):
        mask = target >= 0
        labelled = int(mask.sum())
        if labelled == 0:
            skipped += 1
            continue
        hits = int((pred[mask] == target[mask]).sum())
        per_image.append(hits / labelled)
        correct_total += hits
        labelled_total += labelled
        pred_ids = np.clip(pred[mask].astype(np.int64), 0, NUM_CLASSES - 1)
        confusion += np.bincount(
            target[mask].astype(np.int64) * NUM_CLASSES + pred_ids,
            minlength=NUM_CLASSES * NUM_CLASSES,
        ).reshape(NUM_CLASSES, NUM_CLASSES)
    true_counts = confusion.sum(axis=1)
    pred_counts = confusion.sum(axis=0)
    hits_per_class = np.diag(confusion)
    per_class_accuracy: list[float | None] = []
    per_class_iou: list[float | None] = []
    for c in range(NUM_CLASSES):
        if true_counts[c] == 0:
            per_class_accuracy.append(None)
            per_class_iou.append(None)
            continue
        per_class_accuracy.append(float(hits_per_class[c] / true_counts[c]))
        union = true_counts[c] + pred_counts[c] - hits_per_class[c]
        per_class_iou.append(float(hits_per_class[c] / union))
    return {
        "accuracy": float(np.mean(per_image)) if per_image else float("nan"),
        "pooled_accuracy": correct_total / labelled_total if labelled_total else float("nan"),
        "per_class_accuracy": per_class_accuracy,
        "per_class_iou": per_class_iou,
        "count": len(per_image),
        "skipped_void_only": skipped,
    }


@register
class Segmentation(TaskKind):
    name = "segmentation"
    title = gettext_noop("Semantic segmentation (MSRC-v2)")
    input_shape = (3, SIZE, SIZE)
    prediction_dtype = "uint8"
    score_key = "accuracy"
    ranked_options: ClassVar[dict[str, str]] = {
        "accuracy": gettext_noop("mean over images"),
        "pooled_accuracy": gettext_noop("all labelled pixels together"),
    }
    default_threshold = 0.64
    score_display = "percent"
    score_label = gettext_noop("Accuracy")
    figures = (
        Figure("accuracy", gettext_noop("Mean over images"), "percent"),
        Figure("pooled_accuracy", gettext_noop("All pixels pooled"), "percent"),
    )
    default_max_file_mb = 50
    course_model = CourseModel(
        "exercise_code.networks.segmentation_nn",
        "SegmentationNN",
        lambda cls, hparams: cls(num_classes=NUM_CLASSES, hparams=hparams),
    )
    public_samples = 4
    # Copies: the predicted class of 2048 labelled pixels; near from 99 % equal labels up. Two
    # demo models trained apart agree on 96.5 % of the pixels, a copy nudged by 0.1 % on all of
    # them (docs/staff.md, "Copies"): accurate segmentations agree on most pixels anyway.
    sketch_size = 2048
    near_threshold = 0.99

    def prediction_shape(self, params: Params) -> tuple[int, ...]:
        return (SIZE, SIZE)

    def describe_output(self, params: Params) -> str:
        return gettext_noop("class scores of shape (N, %(classes)s, %(size)s, %(size)s)") % {
            "classes": NUM_CLASSES,
            "size": SIZE,
        }

    def output_fits(self, shape: tuple[int, ...], batch: int, params: Params) -> bool:
        return shape == (batch, NUM_CLASSES, SIZE, SIZE)

    def reduce_batch(self, raw: np.ndarray, params: Params) -> np.ndarray:
        # Prediction = argmax over the class dimension, as the course's evaluation does.
        return raw.argmax(axis=1).astype(np.uint8)

    def check_predictions(self, predictions: np.ndarray, count: int, params: Params) -> np.ndarray:
        predictions = super().check_predictions(predictions, count, params)
        if predictions.size and int(predictions.max()) >= NUM_CLASSES:
            raise GradingError(
                "bad_predictions",
                "the grader could not read your model's predictions",
                f"class id {int(predictions.max())} out of range",
            )
        return predictions

    def compute_metrics(self, predictions: np.ndarray, dataset: Dataset) -> dict[str, Any]:
        return segmentation_metrics(predictions, dataset.labels)

    def copy_positions(self, dataset: Dataset, count: int) -> np.ndarray:
        # Labelled pixels only: void pixels are not scored, so agreeing there says nothing.
        from grader.fingerprints import positions

        labelled = np.flatnonzero(dataset.labels.reshape(-1) >= 0)
        return positions(f"{self.name}:{dataset.dataset_hash}", labelled, count)

    def draw_samples(self, inputs: np.ndarray, predictions: np.ndarray) -> bytes:
        """A PNG grid with one row per sample: the image | the image with predicted masks.

        ``inputs`` are the grader's float32 ``(N, 3, H, W)`` in [0, 1]; ``predictions`` uint8
        class ids ``(N, H, W)``. Tiles start at ``PADDING`` pixels and are ``PADDING`` apart.
        Drawn with torchvision's ``draw_segmentation_masks`` in the MSRC label colours.
        """
        import torch
        from PIL import Image
        from torchvision.utils import draw_segmentation_masks, make_grid

        from eval_data.kinds.segmentation import LABEL_COLOURS

        colours = [rgb for class_id, _, rgb in sorted(LABEL_COLOURS) if class_id >= 0]
        classes = torch.arange(NUM_CLASSES).view(-1, 1, 1)
        tiles: list[torch.Tensor] = []
        for image, ids in zip(inputs, predictions, strict=True):
            # The same rounding as ToTensor's inverse: the left tile is the public image itself.
            pixels = torch.from_numpy(np.rint(image * 255.0).clip(0, 255).astype(np.uint8))
            masks = torch.from_numpy(ids.astype(np.int64)).unsqueeze(0) == classes
            overlay = draw_segmentation_masks(pixels, masks, alpha=ALPHA, colors=colours)
            tiles += [pixels, overlay]
        grid = make_grid(torch.stack(tiles), nrow=2, padding=PADDING, pad_value=255)
        out = io.BytesIO()
        Image.fromarray(grid.permute(1, 2, 0).numpy()).save(out, format="PNG", optimize=True)
        return out.getvalue()

    def demo_metrics(self, rng: Any, count: int) -> dict[str, Any]:
        accuracy = round(rng.uniform(0.42, 0.83), 6)
        pooled = min(1.0, max(0.0, accuracy + rng.uniform(-0.03, 0.03)))
        return {
            "accuracy": accuracy,
            "pooled_accuracy": pooled,
            "count": count,
            "skipped_void_only": 0,
            "params": 40_000,
        }
