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


#: images of the hidden set a sketch holds, and the grid its buckets use (in spreads)
COPY_IMAGES = 32
COPY_CELL = 0.25


def keypoint_spread(labels: np.ndarray) -> float:
    """How far the hidden keypoints lie from their mean: the root mean square distance of each
    keypoint from its mean position (1.0 for a degenerate set)."""
    points = labels.reshape(len(labels), -1, 2).astype(np.float64)
    distance = np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=2))
    spread = float(np.sqrt(np.mean(distance**2))) if distance.size else 0.0
    return spread if spread > 0 else 1.0


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
    # Copies: 32 images' keypoints, relative to the hidden keypoints' spread; near from a
    # similarity of 0.98 up, i.e. a mean distance under 2 % of the spread (measured in
    # docs/staff.md, "Copies").
    sketch_dtype = "float32"
    sketch_size = COPY_IMAGES * 30
    near_threshold = 0.98

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

    def copy_rounded(self, predictions: np.ndarray) -> np.ndarray:
        # Four decimals of a coordinate normalised to [-1, 1] (+ 0.0 makes -0.0 equal 0.0).
        return np.round(predictions.astype(np.float64), 4).astype(np.float32) + np.float32(0.0)

    def copy_positions(self, dataset: Dataset, count: int) -> np.ndarray:
        from grader.fingerprints import positions

        images = positions(
            f"{self.name}:{dataset.dataset_hash}", np.arange(len(dataset)), count // 30
        )
        return (images[:, None] * 30 + np.arange(30)[None, :]).reshape(-1)

    def copy_sketch(self, predictions: np.ndarray, dataset: Dataset) -> np.ndarray:
        """The chosen images' 30 values, less the hidden keypoints' mean, over their spread:
        distances between two sketches read as a share of the spread."""
        labels = dataset.labels.reshape(len(dataset), 30).astype(np.float64)
        mean = labels.mean(axis=0)
        spread = keypoint_spread(labels)
        chosen = self.copy_positions(dataset, self.sketch_size)
        values = predictions.reshape(-1).astype(np.float64)[chosen]
        return ((values - mean[chosen % 30]) / spread).astype(np.float32)

    def copy_tokens(self, sketch: np.ndarray) -> np.ndarray:
        # A grid of COPY_CELL spreads, each value's grid shifted by a fixed random offset.
        offsets = np.random.default_rng(30).random(len(sketch))
        return np.floor(sketch.astype(np.float64) / COPY_CELL + offsets).astype(np.int64)

    def copy_input_blind(self, sketch: np.ndarray) -> bool:
        """Every chosen image given the same 30 values (a model that always answers the mean
        face, say): see ``TaskKind.copy_input_blind``."""
        if len(sketch) < 60 or len(sketch) % 30:
            return False
        rows = sketch.reshape(-1, 30)
        return bool(np.all(rows == rows[0]))

    def copy_band_rows(self, threshold: float, most: int) -> int:
        return min(most, 16)

    def copy_similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        """1 less the mean distance between the two uploads' keypoints, in spreads."""
        if len(a) == 0 or len(a) != len(b) or len(a) % 2:
            return 0.0
        diff = (a.astype(np.float64) - b.astype(np.float64)).reshape(-1, 2)
        return max(0.0, 1.0 - float(np.mean(np.sqrt((diff * diff).sum(axis=1)))))

    def demo_metrics(self, rng: Any, count: int) -> dict[str, Any]:
        score = round(rng.uniform(45.0, 420.0), 4)
        return {"score": score, "mse": 1 / (2 * score), "count": count, "params": 360_000}
