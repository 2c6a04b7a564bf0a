"""What every task kind provides: the input spec, the output check, metrics, the ranked score and
pass rule, and the few facts pages need to show its numbers. numpy only at import time: the web
process reads these for task metadata, and only the model process and the worker import torch
(inside the methods that draw or train)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from grader.errors import GradingError
from grader.i18n import gettext_noop

if TYPE_CHECKING:
    from eval_data.dataset import Dataset

#: a kind's parameters taken from its hidden test set (classification: the number of classes),
#: sent to the model process with every job so that it can check the output's shape
Params = dict[str, Any]


@dataclass(frozen=True)
class Figure:
    """A figure a result shows beside its score: a metric's key, its label and how it reads.

    ``style`` is one of ``courses.formatting.STYLES``: "number" (two decimals), "percent" or
    "fine" (six decimals: a small error students compare against their own evaluation). ``headline``
    figures go wherever the score goes: a column of the leaderboard and the grade book, the
    result's one-line summary (emails, live status). The others show on the result page.
    """

    key: str
    label: str
    style: str = "number"
    headline: bool = False


@dataclass(frozen=True)
class CourseModel:
    """How the course's zip format rebuilds a ``{"state_dict", "hparams"}`` file: the student's
    module and class, called as the course's notebooks call it."""

    module: str
    cls: str
    build: Callable[[Any, Any], Any]


class TaskKind(ABC):
    """One kind of challenge; subclasses set the class attributes and implement the methods.

    Outputs travel in two steps. Inside the sandboxed model process, ``check_batch`` checks each
    raw batch and ``reduce_batch`` shrinks it to the compact predictions the metric needs
    (segmentation: class ids instead of 23 score maps). In the trusted parent,
    ``check_predictions`` validates what came back, since the model process runs student code
    and its word is not trusted, and ``compute_metrics`` scores it against labels the model
    never saw.
    """

    name: str
    title: str
    #: shape of one input sample, batch dimension excluded (an example where the data decides)
    input_shape: tuple[int, ...]
    #: dtype of the compact predictions the parent receives
    prediction_dtype: str
    #: the metric that ranks submissions by default (higher is better)
    score_key: str
    #: metrics a challenge may rank by instead, each with what it means in a few words
    ranked_options: ClassVar[dict[str, str]]
    default_threshold: float
    #: how the score reads: "number" or "percent"
    score_display: str = "number"
    #: the score's name in a table header
    score_label: str = gettext_noop("Score")
    #: figures shown beside the score on the result page (and everywhere, for ``headline`` ones)
    figures: tuple[Figure, ...] = ()
    default_max_params: int = 5_000_000
    default_max_file_mb: int = 20
    #: the course zip's state-dict form, or None if this kind takes only whole pickled modules
    course_model: CourseModel | None = None
    #: public sample images a result page shows the model's predictions on (0: none)
    public_samples: int = 0
    #: what an infinite score means, in a few words, where a chart notes one ("" when none is
    #: possible)
    infinite_score_means: str = ""
    # --- finding copies (``grader.fingerprints``) ---
    #: dtype of the sketch (``copy_sketch``) kept of each upload's predictions
    sketch_dtype: str = "uint8"
    #: positions of the hidden set a sketch holds
    sketch_size: int = 1024
    #: ``near_predictions`` from this similarity up (``copy_similarity``); the platform's
    #: ``COPIES_NEAR_THRESHOLDS`` setting overrides it per kind
    near_threshold: float = 0.99

    # --- what the data decides --------------------------------------------------------------

    def params_for(self, dataset: Dataset) -> Params:
        """Parameters of the output check that come from the test set (none by default)."""
        del dataset
        return {}

    @abstractmethod
    def prediction_shape(self, params: Params) -> tuple[int, ...]:
        """Shape of one sample's compact prediction, as the parent receives it."""

    # --- the model's output -----------------------------------------------------------------

    @abstractmethod
    def describe_output(self, params: Params) -> str:
        """The expected raw output shape, in words a student understands."""

    @abstractmethod
    def output_fits(self, shape: tuple[int, ...], batch: int, params: Params) -> bool:
        """Whether a raw output of ``shape`` for ``batch`` inputs is acceptable."""

    @abstractmethod
    def reduce_batch(self, raw: np.ndarray, params: Params) -> np.ndarray:
        """Shrink one validated raw batch to compact predictions (runs in the model process)."""

    def check_batch(
        self, raw: np.ndarray, batch: int, params: Params
    ) -> tuple[np.ndarray, int, int]:
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
        if not self.output_fits(shape, batch, params):
            raise GradingError(
                "output_shape",
                f"output shape {shape_text(shape)} for a batch of {batch} images, but the"
                f" challenge needs {self.describe_output(params)} with N = {batch}",
            )
        flat = raw.reshape(batch, -1)
        n_nan = int(np.isnan(flat).any(axis=1).sum()) if raw.dtype.kind == "f" else 0
        n_inf = int(np.isinf(flat).any(axis=1).sum()) if raw.dtype.kind == "f" else 0
        return self.reduce_batch(raw, params), n_nan, n_inf

    def check_predictions(self, predictions: np.ndarray, count: int, params: Params) -> np.ndarray:
        """Validate the compact predictions the model process sent back (runs in the parent)."""
        expected = (count, *self.prediction_shape(params))
        if tuple(predictions.shape) != expected or predictions.dtype != np.dtype(
            self.prediction_dtype
        ):
            raise GradingError(
                "bad_predictions",
                "the grader could not read your model's predictions",
                f"model process sent {predictions.dtype}{tuple(predictions.shape)}, expected"
                f" {self.prediction_dtype}{expected}",
            )
        if predictions.dtype.kind == "f" and not np.isfinite(predictions).all():
            raise GradingError(
                "output_not_finite", "your model returned values that are not finite numbers"
            )
        return predictions

    # --- scoring ----------------------------------------------------------------------------

    @abstractmethod
    def compute_metrics(self, predictions: np.ndarray, dataset: Dataset) -> dict[str, Any]:
        """All figures for a result page; must include ``score_key`` and ``count``."""

    def subset_metrics(
        self, predictions: np.ndarray, dataset: Dataset, indices: np.ndarray
    ) -> dict[str, Any]:
        """The figures of the samples at ``indices`` only (one part of a public / private
        split), from the predictions of the whole set: one inference pass serves every part.
        By default the same metrics on the subset; a kind may compute it faster."""
        return self.compute_metrics(predictions[indices], dataset.subset(indices))

    def passed(self, metrics: dict[str, Any], threshold: float, score_key: str = "") -> bool:
        score = metrics.get(score_key or self.score_key)
        return isinstance(score, int | float) and not math.isnan(score) and score >= threshold

    # --- finding copies ---------------------------------------------------------------------
    #
    # By default for kinds whose compact predictions are labels (a class per image or per
    # pixel): predictions are compared exactly, and similarity is the share of equal labels.

    def copy_rounded(self, predictions: np.ndarray) -> np.ndarray:
        """Predictions rounded to what the metric tells apart (labels: as they are)."""
        return predictions

    def copy_positions(self, dataset: Dataset, count: int) -> np.ndarray:
        """Flat indices into the predictions a sketch holds: every scored one may be drawn."""
        from grader.fingerprints import positions

        total = int(np.prod(dataset.labels.shape, dtype=np.int64))
        return positions(f"{self.name}:{dataset.dataset_hash}", np.arange(total), count)

    def copy_sketch(self, predictions: np.ndarray, dataset: Dataset) -> np.ndarray:
        """The predictions at ``copy_positions``: the same positions for every upload."""
        flat = predictions.reshape(-1)
        return flat[self.copy_positions(dataset, self.sketch_size)].astype(self.sketch_dtype)

    def copy_tokens(self, sketch: np.ndarray) -> np.ndarray:
        """One integer per sketch position, banded into candidate buckets."""
        return sketch.astype(np.int64)

    def copy_input_blind(self, sketch: np.ndarray) -> bool:
        """Whether a sketch shows predictions that ignore the input: the same label at every
        position (an untrained model, or one that always answers the most common class). Such
        uploads agree with each other without anyone copying, so their predictions are no
        evidence; their weights still are."""
        return len(sketch) > 1 and bool(np.all(sketch == sketch[0]))

    def copy_band_rows(self, threshold: float, most: int) -> int:
        """Tokens per band: a pair at ``threshold`` shares a given band with probability ½."""
        if not 0 < threshold < 1:
            return most
        return max(1, min(most, math.ceil(math.log(0.5) / math.log(threshold))))

    def copy_similarity(self, a: np.ndarray, b: np.ndarray) -> float:
        """How alike two sketches are, from 0 to 1: the share of equal labels."""
        if len(a) == 0 or len(a) != len(b):
            return 0.0
        return float(np.mean(a == b))

    # --- pictures and the demo --------------------------------------------------------------

    def draw_samples(self, inputs: np.ndarray, predictions: np.ndarray) -> bytes:
        """A PNG of the model's predictions on public sample images (``public_samples`` > 0)."""
        raise NotImplementedError(f"{self.name} draws no sample pictures")

    @abstractmethod
    def demo_metrics(self, rng: Any, count: int) -> dict[str, Any]:
        """Plausible figures for a seeded demo submission (``random.Random`` ``rng``)."""


def nonfinite_message(n_nan: int, n_inf: int, count: int) -> str:
    values = {"nan": n_nan, "inf": n_inf, "count": count}
    if n_nan and n_inf:
        template = gettext_noop(
            "your model returned NaN for %(nan)s of %(count)s images and infinity for %(inf)s"
            " of %(count)s images; check for divisions by zero or exploding weights, and that"
            " the model was saved in eval mode"
        )
    elif n_nan:
        template = gettext_noop(
            "your model returned NaN for %(nan)s of %(count)s images; check for divisions by"
            " zero or exploding weights, and that the model was saved in eval mode"
        )
    else:
        template = gettext_noop(
            "your model returned infinity for %(inf)s of %(count)s images; check for divisions"
            " by zero or exploding weights, and that the model was saved in eval mode"
        )
    return template % values


def shape_text(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
