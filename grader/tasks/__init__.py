"""Registry of task kinds, discovered from the modules of this package.

A task kind is an input spec, an output check, metrics, a ranking score and a pass rule. Each
lives in one module here, defining a ``TaskKind`` subclass decorated with ``@register``; the
matching dataset reader lives in one module of ``eval_data.kinds``. Nothing else changes to add
a kind. These modules use numpy only: the web process imports them for task metadata.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from eval_data.registry import Registry
from grader.errors import GradingError


class TaskKind(ABC):
    """One kind of challenge; subclasses set the class attributes and implement the methods.

    Outputs travel in two steps. Inside the sandboxed child, ``reduce_batch`` checks each raw
    batch and shrinks it to the compact predictions the metric needs (segmentation: class ids
    instead of 23 score maps). In the trusted parent, ``check_predictions`` validates what came
    back, since the child runs student code and its word is not trusted, and
    ``compute_metrics`` scores it against the labels the child never saw.
    """

    name: str
    title: str
    #: shape of one input sample, batch dimension excluded
    input_shape: tuple[int, ...]
    #: shape and dtype of one sample's compact prediction, as the parent receives it
    prediction_shape: tuple[int, ...]
    prediction_dtype: str
    #: the metric that ranks submissions (higher is better) and that the pass rule compares
    score_key: str
    default_threshold: float
    #: how the score is shown: "number" or "percent"
    score_display: str = "number"
    default_max_params: int = 5_000_000
    default_max_file_mb: int = 20

    @abstractmethod
    def describe_output(self) -> str:
        """The expected raw output shape, in words a student understands."""

    @abstractmethod
    def output_fits(self, shape: tuple[int, ...], batch: int) -> bool:
        """Whether a raw output of ``shape`` for ``batch`` inputs is acceptable."""

    @abstractmethod
    def reduce_batch(self, raw: np.ndarray) -> np.ndarray:
        """Shrink one validated raw batch to compact predictions (runs in the child)."""

    @abstractmethod
    def compute_metrics(self, predictions: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
        """All figures for a result page; must include ``score_key`` and ``count``."""

    def passed(self, metrics: dict[str, Any], threshold: float) -> bool:
        score = metrics[self.score_key]
        return score is not None and not math.isnan(score) and score >= threshold

    def check_batch(self, raw: np.ndarray, batch: int) -> tuple[np.ndarray, int, int]:
        """Validate one raw output batch; return compact predictions and NaN / Inf image counts.

        Shape and dtype problems raise ``GradingError`` at once; non-finite values are counted
        so the student hears how many images were affected in total.
        """
        if raw.dtype.kind not in "fiu":
            raise GradingError(
                "output_dtype",
                f"your model returned values of type {raw.dtype}, but the challenge needs"
                " floating-point numbers",
            )
        shape = tuple(int(d) for d in raw.shape)
        if not self.output_fits(shape, batch):
            raise GradingError(
                "output_shape",
                f"output shape {shape_text(shape)} for a batch of {batch} images, but the"
                f" challenge needs {self.describe_output()} with N = {batch}",
            )
        flat = raw.reshape(batch, -1)
        n_nan = int(np.isnan(flat).any(axis=1).sum()) if raw.dtype.kind == "f" else 0
        n_inf = int(np.isinf(flat).any(axis=1).sum()) if raw.dtype.kind == "f" else 0
        return self.reduce_batch(raw), n_nan, n_inf

    def check_predictions(self, predictions: np.ndarray, count: int) -> np.ndarray:
        """Validate the compact predictions the child sent back (runs in the trusted parent)."""
        expected = (count, *self.prediction_shape)
        if tuple(predictions.shape) != expected or predictions.dtype != np.dtype(
            self.prediction_dtype
        ):
            raise GradingError(
                "bad_predictions",
                "the grader could not read your model's predictions",
                f"child sent {predictions.dtype}{tuple(predictions.shape)}, expected"
                f" {self.prediction_dtype}{expected}",
            )
        if predictions.dtype.kind == "f" and not np.isfinite(predictions).all():
            raise GradingError(
                "output_not_finite", "your model returned values that are not finite numbers"
            )
        return predictions


def nonfinite_message(n_nan: int, n_inf: int, count: int) -> str:
    parts = []
    if n_nan:
        parts.append(f"NaN for {n_nan} of {count} images")
    if n_inf:
        parts.append(f"infinity for {n_inf} of {count} images")
    return (
        "your model returned " + " and ".join(parts) + "; check for divisions by zero or"
        " exploding weights, and that the model was saved in eval mode"
    )


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


_registry: Registry[TaskKind] = Registry(__name__, "task", ValueError)
register = _registry.register
get_task = _registry.get
task_names = _registry.names
