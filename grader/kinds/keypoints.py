"""Facial keypoints: 15 (x, y) points regressed from a 96x96 grey image.

Score = 1 / (2 * MSE) on keypoints normalised to [-1, 1]. An MSE of exactly zero gives an
infinite score: it is kept as ``float("inf")`` (PostgreSQL and SQLite both store it in a float
column and sort it above every finite number), written as the string ``"Infinity"`` in JSON
(``float("Infinity")`` and JavaScript's ``Number("Infinity")`` both read it back) and shown
as "∞".
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from grader.i18n import gettext_noop
from grader.kinds import CourseModel, Figure, Params, TaskKind, register

if TYPE_CHECKING:
    from eval_data.dataset import Dataset


def keypoint_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """MSE over all N * 30 values (= the mean of per-image MSEs) and the course's score."""
    count = len(predictions)
    diff = predictions.reshape(count, -1).astype(np.float64) - labels.reshape(count, -1).astype(
        np.float64
    )
    mse = float(np.mean(np.mean(diff * diff, axis=1)))
    score = math.inf if mse == 0.0 else 1.0 / (2.0 * mse)
    return {"score": score, "mse": mse, "count": count}


@register
class Keypoints(TaskKind):
    name = "keypoints"
    title = gettext_noop("Facial keypoints")
    input_shape = (1, 96, 96)
    prediction_dtype = "float32"
    score_key = "score"
    ranked_options: ClassVar[dict[str, str]] = {"score": "1 / (2 · MSE)"}
    default_threshold = 100.0
    default_max_file_mb = 20
    # GRADING_SPEC: show both the score and the MSE on the leaderboard and the result page.
    figures = (Figure("mse", "MSE", "fine", headline=True),)
    infinite_score_means = "MSE 0"
    course_model = CourseModel(
        "exercise_code.networks.keypoint_nn", "KeypointModel", lambda cls, hparams: cls(hparams)
    )

    def prediction_shape(self, params: Params) -> tuple[int, ...]:
        return (30,)

    def describe_output(self, params: Params) -> str:
        return gettext_noop("30 values per image, such as (N, 30) or (N, 15, 2)")

    def output_fits(self, shape: tuple[int, ...], batch: int, params: Params) -> bool:
        # The course's evaluation does ``.view(-1, 15, 2)``: any layout of 30 values per image.
        return bool(shape) and shape[0] == batch and math.prod(shape) == batch * 30

    def reduce_batch(self, raw: np.ndarray, params: Params) -> np.ndarray:
        return raw.reshape(len(raw), 30).astype(np.float32)

    def compute_metrics(self, predictions: np.ndarray, dataset: Dataset) -> dict[str, Any]:
        return keypoint_metrics(predictions, dataset.labels)

    def demo_metrics(self, rng: Any, count: int) -> dict[str, Any]:
        score = round(rng.uniform(45.0, 420.0), 4)
        return {"score": score, "mse": 1 / (2 * score), "count": count, "params": 360_000}
