"""Image classification (CIFAR-10 style): one class per image, out of the test set's class folders.

The model takes ``(N, 3, H, W)`` float32 in [0, 1] (``ToTensor``'s output, no normalisation: the
model carries its own) and returns ``(N, C)`` scores, C = the number of class folders. The
prediction is the first index of the maximum, as ``torch.argmax`` picks it; the score is the
accuracy over all images. Per-class accuracy (``None`` for a class with no image) and the
confusion matrix (true class x predicted class) are extra figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from grader.errors import GradingError
from grader.i18n import gettext_noop
from grader.kinds import CourseModel, Params, TaskKind, register

if TYPE_CHECKING:
    from eval_data.dataset import Dataset

#: the largest class count whose confusion matrix goes into the metrics: C x C integers are
#: stored with every result and shown on its page, which stops being useful (and small) above
MAX_CONFUSION_CLASSES = 50


def classification_metrics(
    predictions: np.ndarray, labels: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """Accuracy, per-class accuracy by class name, and the confusion matrix (C ≤ 50).

    ``predictions`` and ``labels`` are class indices ``(N,)`` in ``[0, len(classes))``.
    """
    num_classes = len(classes)
    predicted = np.asarray(predictions, dtype=np.int64).reshape(-1)
    truth = np.asarray(labels, dtype=np.int64).reshape(-1)
    if predicted.shape != truth.shape:
        raise ValueError(f"{predicted.size} predictions for {truth.size} labels")
    for name, values in (("prediction", predicted), ("label", truth)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"a {name} lies outside the {num_classes} classes")
    count = int(truth.size)
    confusion = np.bincount(
        truth * num_classes + predicted, minlength=num_classes * num_classes
    ).reshape(num_classes, num_classes)
    per_class_total = confusion.sum(axis=1)
    hits = np.diag(confusion)
    per_class: dict[str, float | None] = {
        name: float(hits[c] / per_class_total[c]) if per_class_total[c] else None
        for c, name in enumerate(classes)
    }
    metrics: dict[str, Any] = {
        "accuracy": float(hits.sum() / count) if count else float("nan"),
        "per_class_accuracy": per_class,
        "count": count,
    }
    if num_classes <= MAX_CONFUSION_CLASSES:
        metrics["confusion"] = confusion.tolist()
    return metrics


def _classes(params: Params) -> int | None:
    """The class count the data decided, or None where there is no data (``grader check``)."""
    value = params.get("classes")
    return int(value) if value is not None else None


@register
class Classification(TaskKind):
    name = "classification"
    title = gettext_noop("Image classification (CIFAR-10)")
    # CIFAR's size; the data decides (every image of a set has one size, any size).
    input_shape = (3, 32, 32)
    prediction_dtype = "int32"
    score_key = "accuracy"
    ranked_options: ClassVar[dict[str, str]] = {
        "accuracy": gettext_noop("share of images classified right")
    }
    default_threshold = 0.5
    score_display = "percent"
    score_label = gettext_noop("Accuracy")
    figures = ()
    default_max_file_mb = 20
    # Copies: the predicted class of 512 images; near from 97 % equal labels up (measured in
    # docs/staff.md, "Copies").
    sketch_dtype = "int32"
    sketch_size = 512
    near_threshold = 0.97
    course_model = CourseModel(
        "exercise_code.networks.classification_net",
        "ClassificationNet",
        lambda cls, hparams: cls(hparams=hparams),
    )

    def params_for(self, dataset: Dataset) -> Params:
        return {"classes": len(dataset.classes)}

    def prediction_shape(self, params: Params) -> tuple[int, ...]:
        return ()

    def describe_output(self, params: Params) -> str:
        classes = _classes(params)
        if classes is None:
            return gettext_noop("class scores of shape (N, C) (one column per class, C ≥ 1)")
        return gettext_noop(
            "class scores of shape (N, %(classes)s) (one column per class folder, sorted by name)"
        ) % {"classes": classes}

    def output_fits(self, shape: tuple[int, ...], batch: int, params: Params) -> bool:
        # Exactly (N, C): the course's evaluation takes the argmax over dimension 1, which on
        # (N, C, 1) or a flat (N * C,) output would compare something else with the labels.
        classes = _classes(params)
        if len(shape) != 2 or shape[0] != batch:
            return False
        return shape[1] >= 1 if classes is None else shape[1] == classes

    def reduce_batch(self, raw: np.ndarray, params: Params) -> np.ndarray:
        # numpy's argmax, like torch.argmax, returns the first index of the maximum on ties.
        return raw.argmax(axis=1).astype(np.int32)

    def check_predictions(self, predictions: np.ndarray, count: int, params: Params) -> np.ndarray:
        predictions = super().check_predictions(predictions, count, params)
        if not predictions.size:
            return predictions
        low, high = int(predictions.min()), int(predictions.max())
        classes = _classes(params)
        if low < 0 or (classes is not None and high >= classes):
            bad = low if low < 0 else high
            limit = "C" if classes is None else str(classes)
            raise GradingError(
                "bad_predictions",
                "the grader could not read your model's predictions",
                f"class index {bad} out of range [0, {limit})",
            )
        return predictions

    def compute_metrics(self, predictions: np.ndarray, dataset: Dataset) -> dict[str, Any]:
        return classification_metrics(predictions, dataset.labels, dataset.classes)

    def demo_metrics(self, rng: Any, count: int) -> dict[str, Any]:
        """Consistent made-up figures on the synthetic classes: each class's hits drawn around
        one skill level, the misses spread over the other classes."""
        from eval_data.kinds.classification import CLASS_NAMES

        classes = list(CLASS_NAMES)
        num_classes = len(classes)
        skill = rng.uniform(0.38, 0.92)
        confusion = [[0] * num_classes for _ in classes]
        for c in range(num_classes):
            total = count // num_classes + (1 if c < count % num_classes else 0)
            hits = round(total * min(1.0, max(0.0, skill + rng.uniform(-0.2, 0.2))))
            confusion[c][c] = hits
            for _ in range(total - hits):
                confusion[c][rng.choice([k for k in range(num_classes) if k != c])] += 1
        labels = np.repeat(np.arange(num_classes), [sum(row) for row in confusion])
        predictions = np.concatenate(
            [np.repeat(np.arange(num_classes), row) for row in confusion]
        ).astype(np.int64)
        return {**classification_metrics(predictions, labels, classes), "params": 40_000}
