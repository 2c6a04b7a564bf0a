"""Semantic segmentation on MSRC-v2: 23 classes, void pixels (-1) ignored.

The ranking score is the mean of per-image accuracies over non-void pixels (the course evaluates
with batch size 1); images with no labelled pixel are skipped and counted. Pooled accuracy,
per-class accuracy and per-class IoU are extra figures (``None`` for a class that never occurs).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from grader.errors import GradingError
from grader.tasks import TaskKind, register

NUM_CLASSES = 23
SIZE = 240


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
    title = "Semantic segmentation (MSRC-v2)"
    input_shape = (3, SIZE, SIZE)
    prediction_shape = (SIZE, SIZE)
    prediction_dtype = "uint8"
    score_key = "accuracy"
    default_threshold = 0.64
    score_display = "percent"
    default_max_file_mb = 50

    def describe_output(self) -> str:
        return f"class scores of shape (N, {NUM_CLASSES}, {SIZE}, {SIZE})"

    def output_fits(self, shape: tuple[int, ...], batch: int) -> bool:
        return shape == (batch, NUM_CLASSES, SIZE, SIZE)

    def reduce_batch(self, raw: np.ndarray) -> np.ndarray:
        # Prediction = argmax over the class dimension, as the course's evaluation does.
        return raw.argmax(axis=1).astype(np.uint8)

    def check_predictions(self, predictions: np.ndarray, count: int) -> np.ndarray:
        predictions = super().check_predictions(predictions, count)
        if predictions.size and int(predictions.max()) >= NUM_CLASSES:
            raise GradingError(
                "bad_predictions",
                "the grader could not read your model's predictions",
                f"class id {int(predictions.max())} out of range",
            )
        return predictions

    def compute_metrics(self, predictions: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        return segmentation_metrics(predictions, labels)
