"""Grade one model file against one hidden test set: the path the worker and the CLI share.

``evaluate`` checks the file, runs it on the test inputs through a runner and scores what comes
back; ``sample_picture`` runs the same bytes on a challenge's public sample images and lets the
kind draw its predictions (never on hidden images).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import eval_data
from grader import __version__, formats
from grader.errors import PlatformError
from grader.fingerprints import prediction_prints
from grader.formats.upload import prepare_upload
from grader.kinds import TaskKind, get_kind
from grader.limits import Limits
from grader.runners import Job, Progress, Runner
from grader.split import public_split

_cache_lock = threading.Lock()
_cache: dict[tuple[str, str], tuple[int, eval_data.Dataset]] = {}


def load_dataset(task: str, root: Path) -> eval_data.Dataset:
    """Load a hidden test set once per process; re-read when its manifest changes."""
    root = Path(root).resolve()
    key = (task, str(root))
    manifest = root / "manifest.json"
    try:
        stamp = manifest.stat().st_mtime_ns
    except FileNotFoundError:
        stamp = -1
    with _cache_lock:
        hit = _cache.get(key)
        if hit and hit[0] == stamp:
            return hit[1]
    try:
        dataset = eval_data.load(root, task)
    except eval_data.DatasetError as exc:
        raise PlatformError("dataset", "the hidden test set is not available", str(exc)) from exc
    with _cache_lock:
        _cache[key] = (stamp, dataset)
    return dataset


@dataclass(frozen=True)
class Evaluation:
    task: str
    format: str
    score: float
    passed: bool
    threshold: float
    metrics: dict[str, Any]
    dataset_hash: str
    params: int
    seconds: float
    runner: str
    grader_version: str = __version__
    log: str = field(default="", repr=False)
    #: for finding copies, staff only (never in ``to_json``): the weights fingerprint the model
    #: process reported, and the prediction fingerprint and sketch computed here
    weights_fingerprint: str = field(default="", repr=False)
    predictions_fingerprint: str = field(default="", repr=False)
    predictions_sketch: bytes = field(default=b"", repr=False)

    def to_json(self) -> dict[str, Any]:
        """The result as plain JSON values; an infinite score becomes the string "Infinity"."""
        data = {
            **{k: json_value(v) for k, v in self.metrics.items()},
            "passed": self.passed,
            "threshold": self.threshold,
            "task": self.task,
            "format": self.format,
            "params": self.params,
            "dataset_hash": self.dataset_hash,
            "grader_version": self.grader_version,
            "runner": self.runner,
        }
        return data


def json_number(value: Any) -> Any:
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def json_value(value: Any) -> Any:
    """``json_number`` through nested figures (a split's public and private parts)."""
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return json_number(value)


def split_metrics(
    kind: TaskKind, predictions: Any, dataset: eval_data.Dataset, fraction: float
) -> dict[str, Any]:
    """The figures of the public and the private part, from the whole set's predictions."""
    split = public_split(dataset, fraction)
    public = kind.subset_metrics(predictions, dataset, split.public)
    private = kind.subset_metrics(predictions, dataset, split.private)
    return {
        "public": public,
        "private": private,
        # The parts' own counts (segmentation skips void-only images), so they add up to the
        # whole set's ``count``.
        "public_count": int(public.get("count", len(split.public))),
        "private_count": int(private.get("count", len(split.private))),
        "split_seed": split.seed,
        "public_fraction": fraction,
    }


def evaluate(
    model_path: Path,
    task: str,
    data_dir: Path,
    runner: Runner,
    *,
    threshold: float | None = None,
    limits: Limits | None = None,
    allowed_formats: tuple[str, ...] = formats.DEFAULT_FORMATS,
    device: str = "cpu",
    batch_size: int = 32,
    progress: Progress | None = None,
    on_loaded: Callable[[eval_data.Dataset], None] | None = None,
    score_key: str = "",
    public_fraction: float = 0.0,
) -> Evaluation:
    """Check, run and score ``model_path``; raise ``GradingError`` or ``PlatformError``.

    ``score_key`` picks the figure that ranks and passes (the kind's default if empty).
    ``public_fraction`` > 0 also scores the public and the private part of the test set
    (``grader.split``) from the same predictions; the score and pass stay the whole set's.
    """
    kind = get_kind(task)
    limits = limits or Limits()
    threshold = kind.default_threshold if threshold is None else threshold
    score_key = score_key or kind.score_key
    fmt, model = prepare_upload(
        Path(model_path), allowed_formats=allowed_formats, max_bytes=limits.max_file_bytes
    )
    dataset = load_dataset(task, data_dir)
    if on_loaded:
        on_loaded(dataset)
    params = kind.params_for(dataset)
    job = Job(kind.name, fmt, model, device, batch_size, limits, params)
    prediction = runner.predict(
        job, dataset.inputs, output_bound(kind, params, len(dataset)), progress
    )
    predictions = kind.check_predictions(prediction.predictions, len(dataset), params)
    metrics = kind.compute_metrics(predictions, dataset)
    if public_fraction > 0:
        metrics |= split_metrics(kind, predictions, dataset, public_fraction)
    score = metrics.get(score_key)
    prints = prediction_prints(kind, predictions, dataset)
    return Evaluation(
        task=task,
        format=fmt,
        score=float(score) if isinstance(score, int | float) else math.nan,
        passed=kind.passed(metrics, threshold, score_key),
        threshold=threshold,
        metrics=metrics,
        dataset_hash=dataset.dataset_hash,
        params=prediction.params,
        seconds=prediction.seconds,
        runner=runner.name,
        log=prediction.log,
        weights_fingerprint=prediction.weights,
        predictions_fingerprint=prints.exact,
        predictions_sketch=prints.sketch,
    )


def output_bound(kind: TaskKind, params: dict[str, Any], count: int) -> int:
    """The most bytes of predictions a job may send back for ``count`` inputs."""
    return count * math.prod(kind.prediction_shape(params)) * 8 + 4096


def sample_picture(
    model_path: Path,
    task: str,
    data_dir: Path,
    runner: Runner,
    *,
    limits: Limits,
    allowed_formats: tuple[str, ...],
    device: str = "cpu",
) -> bytes | None:
    """The kind's picture of the model's predictions on the challenge's public samples.

    None when the kind draws none or the challenge has no public folder
    (``eval_data.public``). The model runs exactly as in grading: the same runner, the same
    checked bytes, the parameters of the hidden set. Raises ``GradingError`` or
    ``PlatformError`` like ``evaluate``.
    """
    from eval_data.public import public_dir, read_public_samples

    kind = get_kind(task)
    folder = public_dir(data_dir)
    if not kind.public_samples or not folder.is_dir():
        return None
    inputs = read_public_samples(folder, task, kind.public_samples)
    fmt, model = prepare_upload(
        Path(model_path), allowed_formats=allowed_formats, max_bytes=limits.max_file_bytes
    )
    params = kind.params_for(load_dataset(task, data_dir))
    job = Job(kind.name, fmt, model, device, len(inputs), limits, params)
    prediction = runner.predict(job, inputs, output_bound(kind, params, len(inputs)))
    return kind.draw_samples(
        inputs, kind.check_predictions(prediction.predictions, len(inputs), params)
    )
